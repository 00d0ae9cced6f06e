"""sessionware.django: the engine's behaviour beyond Django's own tests (scripts/upstream_django.sh).

Keys that are never adopted, keys at rest hashed, settings and their errors,
key rotation through SECRET_KEY_FALLBACKS, expiry, concurrent writers, the
registry through django.contrib.auth's log-in, clearsessions, the async faces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import django_support
from .conftest import OLD_SECRET, SECRET, unique_prefix
from .django_support import django_logged_in, django_redis_cache

django_support.setup()

from django.contrib.auth import login  # noqa: E402 - after Django is configured
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.sessions.backends.base import UpdateError  # noqa: E402
from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from sessionware import CookieStore, Expiry, MemoryStore, SQLiteStore  # noqa: E402
from sessionware.django import SessionStore, async_user_sessions, current_session, user_sessions  # noqa: E402
from sessionware.errors import ConfigurationError  # noqa: E402
from sessionware.testing import FakeClock  # noqa: E402


@pytest.fixture
def configured(server_store: Any, clock: FakeClock) -> Iterator[Any]:
    """sessionware.django on every server-side store, on the fake clock."""
    with override_settings(SESSIONWARE={"store": server_store, "clock": clock}):
        yield server_store


@pytest.fixture
def memory(clock: FakeClock) -> Iterator[MemoryStore]:
    store = MemoryStore(clock=clock)
    with override_settings(SESSIONWARE={"store": store, "clock": clock}):
        yield store


def saved(**data: Any) -> SessionStore:
    session = SessionStore()
    for key, value in data.items():
        session[key] = value
    session.save()
    return session


# -- keys -------------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_a_saved_session_loads_by_its_key_on_every_store() -> None:
    session = saved(cart=["book"], theme="dark")
    key = session.session_key
    assert key is not None
    assert key.startswith("i1.")
    again = SessionStore(key)
    assert dict(again.items()) == {"cart": ["book"], "theme": "dark"}
    assert again.exists(key)


@pytest.mark.usefixtures("memory")
def test_an_unknown_or_forged_key_is_never_adopted() -> None:
    real = saved(a=1).session_key
    assert real is not None
    tampered = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    for key in ["someunknownkey", "i1." + "A" * 80, tampered, "x; y=z" * 3]:
        session = SessionStore(key)
        assert dict(session.items()) == {}
        assert session.session_key is None
        session["b"] = 2
        session.save()
        assert session.session_key not in (None, key)  # a key of its own, never the one offered


def test_the_store_keeps_only_a_hash_of_the_session_id(memory: MemoryStore) -> None:
    session = saved(a=1)
    key = session.session_key
    assert key is not None
    stored = list(memory._records)
    assert len(stored) == 1
    body = key.removeprefix("i1.")
    assert all(body not in stored_key and stored_key not in body for stored_key in stored)


@pytest.mark.usefixtures("memory")
def test_a_key_made_under_a_fallback_secret_works_and_is_reissued_under_the_current_one() -> None:
    with override_settings(SECRET_KEY=OLD_SECRET):
        old = saved(a=1).session_key
    assert old is not None
    with override_settings(SECRET_KEY=SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        session = SessionStore(old)
        assert session["a"] == 1
        assert session.modified  # the middleware saves it: a new cookie, under SECRET
        session.save()
        assert session.session_key not in (None, old)
    with override_settings(SECRET_KEY=SECRET, SECRET_KEY_FALLBACKS=[]):
        assert SessionStore(old).get("a") is None  # the old secret removed: the old key fails
        assert SessionStore(session.session_key)["a"] == 1


# -- settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "SESSIONWARE['store'] is required"),
        ({"store": "mysql://x"}, "from_url does not know the store URL"),
        ({"store": "memory:", "colour": 1}, "no option 'colour'"),
        ({"store": CookieStore()}, "must be a server-side store"),
        ({"store": SQLiteStore}, "must be a server-side store"),
        ({"store": "memory:", "expiry": "forever"}, "SESSIONWARE expects expiry"),
        ({"store": "memory:", "secret_key_base": "short"}, "secret_key_base"),
        ({"store": MemoryStore(), "store_options": {"prefix": "x"}}, "applies to a store URL"),
    ],
)
def test_a_bad_setting_raises_improperly_configured_at_first_use_naming_it(
    options: dict[str, Any], named: str
) -> None:
    with override_settings(SESSIONWARE=options):
        session = SessionStore()  # nothing is read yet: Django builds one per request
        with pytest.raises(ImproperlyConfigured, match=re.escape(named)) as info:
            session["a"] = 1
        assert isinstance(info.value, ConfigurationError)


def test_without_sessionware_settings_the_error_says_what_to_add() -> None:
    with override_settings(SESSIONWARE=None), pytest.raises(ImproperlyConfigured, match="SESSIONWARE = "):
        SessionStore().save()


def test_a_short_secret_key_is_refused_naming_secret_key() -> None:
    with (
        override_settings(SECRET_KEY="too-short", SESSIONWARE={"store": "memory:"}),
        pytest.raises(ImproperlyConfigured, match="SECRET_KEY"),
    ):
        SessionStore().save()


def test_a_store_url_is_made_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with override_settings(SESSIONWARE={"store": url}):
        key = saved(a=1).session_key
    with override_settings(SESSIONWARE={"store": url}):
        assert SessionStore(key)["a"] == 1
    assert (tmp_path / "s.db").exists()


# -- expiry -----------------------------------------------------------------------


def test_sessions_end_session_cookie_age_after_they_began(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    with override_settings(SESSION_COOKIE_AGE=3600, SESSIONWARE={"store": store, "clock": clock}):
        key = saved(a=1).session_key
        clock.advance(seconds=3599)
        session = SessionStore(key)
        session["b"] = 2  # activity does not extend it: an absolute timeout
        session.save()
        clock.advance(seconds=1)
        assert SessionStore(key).get("a") is None


def test_set_expiry_ends_a_session_sooner_and_the_record_is_deleted(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    with override_settings(SESSIONWARE={"store": store, "clock": clock}):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(60)
        session.save()
        clock.advance(seconds=59)
        assert SessionStore(session.session_key)["a"] == 1
        clock.advance(seconds=1)
        assert SessionStore(session.session_key).get("a") is None
        assert store._records == {}


def test_an_expiry_option_replaces_the_default(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    expiry = Expiry(idle_timeout=600, absolute_timeout=3600)
    with override_settings(SESSIONWARE={"store": store, "clock": clock, "expiry": expiry}):
        key = saved(a=1).session_key
        clock.advance(seconds=500)
        reader = SessionStore(key)
        assert reader["a"] == 1
        assert reader.modified  # activity due to be recorded: the middleware saves (a touch)
        reader.save()
        clock.advance(seconds=500)
        assert SessionStore(key)["a"] == 1  # the idle timeout slid
        clock.advance(seconds=601)
        assert SessionStore(key).get("a") is None


def test_clearsessions_purges_expired_records(tmp_path: Path, clock: FakeClock) -> None:
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    with override_settings(SESSION_COOKIE_AGE=60, SESSIONWARE={"store": store, "clock": clock}):
        saved(a=1)
        clock.advance(seconds=30)
        keep = saved(b=2).session_key
        clock.advance(seconds=31)
        call_command("clearsessions")
        with sqlite3.connect(tmp_path / "s.db") as connection:
            rows = connection.execute("SELECT count(*) FROM sessionware_sessions").fetchone()
        assert rows[0] == 1
        assert SessionStore(keep)["b"] == 2


# -- concurrency --------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_concurrent_requests_of_one_session_keep_each_others_keys() -> None:
    key = saved(n=0).session_key
    first, second = SessionStore(key), SessionStore(key)
    first["cart"] = ["book"]
    second["theme"] = "dark"
    assert first["n"] == second["n"] == 0  # both loaded before either saved
    first.save()
    second.save()
    assert dict(SessionStore(key).items()) == {"n": 0, "cart": ["book"], "theme": "dark"}


@pytest.mark.usefixtures("configured")
def test_many_threads_setting_different_keys_all_keep_their_change() -> None:
    key = saved(start=True).session_key
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        session = SessionStore(key)
        session[f"k{n}"] = n
        session.load()
        barrier.wait()
        session.save()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = dict(SessionStore(key).items())
    assert data == {"start": True, **{f"k{n}": n for n in range(8)}}


@pytest.mark.usefixtures("memory")
def test_an_in_place_edit_is_saved_with_the_next_save() -> None:
    key = saved(cart=["book"]).session_key
    session = SessionStore(key)
    session["cart"].append("pen")  # Django's own backends lose this without modified = True
    session.save()
    assert SessionStore(key)["cart"] == ["book", "pen"]


@pytest.mark.usefixtures("configured")
def test_saving_a_session_another_request_deleted_raises_update_error_and_writes_nothing() -> None:
    key = saved(a=1).session_key
    mine = SessionStore(key)
    mine["a"] = 2
    mine.load()
    SessionStore(key).flush()  # a log-out elsewhere
    with pytest.raises(UpdateError):
        mine.save()
    assert not SessionStore().exists(key)


@pytest.mark.usefixtures("memory")
def test_cycle_key_of_a_session_another_request_ended_leaves_it_ended() -> None:
    key = saved(a=1).session_key
    mine = SessionStore(key)
    assert mine["a"] == 1
    SessionStore(key).delete()
    mine.cycle_key()
    assert mine.session_key is None
    assert dict(mine.items()) == {}


# -- users ------------------------------------------------------------------------


def _request_with_session(user_agent: str = "Browser/1") -> HttpRequest:
    request = RequestFactory().get("/", HTTP_USER_AGENT=user_agent)
    SessionMiddleware(lambda request: HttpResponse()).process_request(request)
    return request


def _log_in(username: str, user_agent: str = "Browser/1") -> tuple[HttpRequest, str]:
    request = _request_with_session(user_agent)
    user = User.objects.get(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    assert request.session.session_key is not None
    return request, request.session.session_key


@pytest.mark.usefixtures("configured")
def test_a_django_log_in_binds_the_session_to_the_user_for_listing_and_revoking() -> None:
    alice = User.objects.get(username="alice")
    first, first_key = _log_in("alice", "Firefox")
    _, second_key = _log_in("alice", "Safari")
    _log_in("bob")
    listed = user_sessions().list(alice.pk)
    assert sorted(info.user_agent or "" for info in listed) == ["Firefox", "Safari"]
    # From the first session's request: it is marked current; ending the others keeps it.
    users = user_sessions(first)
    mine = current_session(first).sessionware
    assert [info.current for info in users.list(alice.pk, current=mine)].count(True) == 1
    assert users.revoke_all(alice.pk, keep=mine) == 1
    assert not SessionStore().exists(second_key)
    assert first.session.modified  # kept, and renewed: the middleware saves it under a new key
    first.session.save()
    assert first.session.session_key != first_key
    assert SessionStore(first.session.session_key)["_auth_user_id"] == str(alice.pk)
    assert len(user_sessions().list(alice.pk)) == 1


@pytest.mark.usefixtures("memory")
def test_log_out_deletes_the_session_so_its_key_stops_working() -> None:
    from django.contrib.auth import logout

    request, key = _log_in("alice")
    logout(request)
    assert not SessionStore().exists(key)
    assert request.session.session_key is None
    assert user_sessions().list(User.objects.get(username="alice").pk) == []


# -- async --------------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_the_async_methods_use_the_same_records() -> None:
    async def main() -> tuple[dict[str, Any], bool, bool]:
        session = SessionStore()
        await session.aset("a", 1)
        await session.asave()
        key = session.session_key
        other = SessionStore(key)
        await other.aset("b", 2)
        await other.asave()
        loaded = dict(await SessionStore(key).aitems())
        await other.acycle_key()
        moved = await SessionStore().aexists(key)
        await other.aflush()
        gone = await SessionStore().aexists(other.session_key)
        return loaded, moved, gone

    loaded, moved, gone = asyncio.run(main())
    assert loaded == {"a": 1, "b": 2}
    assert moved is False
    assert gone is False


@pytest.mark.usefixtures("memory")
def test_async_user_sessions_list_a_users_sessions() -> None:
    alice = User.objects.get(username="alice")
    _log_in("alice")

    async def main() -> int:
        return len(await async_user_sessions().list(alice.pk))

    assert asyncio.run(main()) == 1


# -- moving in from another SESSION_ENGINE ------------------------------------------


def _previous_engines(redis_url: str, prefix: str) -> dict[str, tuple[Any, Any]]:
    """Per Django backend: a context to write its sessions in, and the reader of them."""
    from django.conf import settings

    from sessionware.legacy import DjangoCache, DjangoDB, DjangoSignedCookies

    database = f"sqlite:///{settings.DATABASES['default']['NAME']}"
    return {
        "db": (contextlib.nullcontext(), DjangoDB(database, secret_key=settings.SECRET_KEY)),
        "cached_db": (contextlib.nullcontext(), DjangoDB(database, secret_key=settings.SECRET_KEY)),
        "cache": (django_redis_cache(redis_url, prefix), DjangoCache(redis_url, key_prefix=prefix)),
        "signed_cookies": (contextlib.nullcontext(), DjangoSignedCookies(settings.SECRET_KEY)),
    }


@pytest.mark.parametrize("backend", ["db", "cached_db", "cache", "signed_cookies"])
def test_switching_session_engine_keeps_every_user_logged_in(
    backend: str, clock: FakeClock, redis_url: str
) -> None:
    from django.contrib.auth import get_user

    writing, reader = _previous_engines(redis_url, unique_prefix())[backend]
    with writing:
        old_key = django_logged_in(backend)  # written by Django's own backend, before the switch
    store = MemoryStore(clock=clock)
    bob = User.objects.get(username="bob")
    with override_settings(SESSIONWARE={"store": store, "clock": clock, "legacy": reader}):
        request = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={old_key}", HTTP_USER_AGENT="Firefox")
        middleware = SessionMiddleware(lambda request: HttpResponse())
        middleware.process_request(request)
        assert get_user(request).pk == bob.pk  # django.contrib.auth sees the same log-in
        response = middleware.process_response(request, HttpResponse())
        new_key = response.cookies["sessionid"].value
        assert new_key.startswith("i1.")
        assert SessionStore(new_key)["cart"] == ["apples"]
        assert len(user_sessions().list(bob.pk)) == 1  # and it is listed among bob's sessions
        if backend != "signed_cookies":  # the old record was deleted once read
            replay = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={old_key}")
            middleware.process_request(replay)
            assert get_user(replay).is_anonymous


def test_an_async_load_reads_the_previous_engines_session_too(clock: FakeClock) -> None:
    from django.conf import settings

    from sessionware.legacy import DjangoDB

    old_key = django_logged_in("db")
    reader = DjangoDB(f"sqlite:///{settings.DATABASES['default']['NAME']}", secret_key=settings.SECRET_KEY)
    with override_settings(SESSIONWARE={"store": MemoryStore(clock=clock), "clock": clock, "legacy": reader}):
        session = SessionStore(old_key)

        async def main() -> tuple[Any, bool]:
            return await session.aget("cart"), session.modified

        assert asyncio.run(main()) == (["apples"], True)
        session.save()
        assert session.session_key is not None
        assert session.session_key.startswith("i1.")
        assert SessionStore(session.session_key)["_auth_user_id"] == str(User.objects.get(username="bob").pk)


def test_a_key_no_reader_knows_starts_anonymous_and_a_bad_legacy_option_is_named(
    memory: MemoryStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionware.legacy import DjangoSignedCookies

    caplog.set_level(logging.DEBUG, logger="sessionware")
    reader = DjangoSignedCookies("another Django app's SECRET_KEY, on the same domain")
    signed = django_logged_in("signed_cookies")
    with override_settings(SESSIONWARE={"store": memory, "clock": clock, "legacy": [reader]}):
        session = SessionStore(signed)
        assert dict(session.items()) == {}
        assert not session.modified
        assert "bad signature" in caplog.text
        own = saved(a=1).session_key  # sessionware's own keys never reach a reader
        caplog.clear()
        assert SessionStore(own)["a"] == 1
        assert "DjangoSignedCookies" not in caplog.text
    wrong = {"store": memory, "legacy": "django.contrib.sessions.backends.db"}  # a name, not a reader
    with (
        override_settings(SESSIONWARE=wrong),
        pytest.raises(ImproperlyConfigured, match=r"SESSIONWARE\['legacy'\]"),
    ):
        SessionStore().save()


# -- events and telemetry -------------------------------------------------------------


def test_events_fire_for_a_django_log_in_a_bad_key_a_revocation_and_a_log_out(clock: FakeClock) -> None:
    from django.contrib.auth import logout

    from sessionware.events import EVENT_KINDS, Events, SessionEvent

    seen: list[SessionEvent] = []
    events = Events(**{"on_" + kind: seen.append for kind in EVENT_KINDS})
    alice = User.objects.get(username="alice")
    with override_settings(SESSIONWARE={"store": MemoryStore(clock=clock), "clock": clock, "events": events}):
        request, _ = _log_in("alice")
        _, other_key = _log_in("alice", "Safari")
        assert [(e.kind, e.user_id, e.reason) for e in seen] == [("log_in", alice.pk, "password")] * 2
        handle = seen[0].handle
        assert handle is not None
        assert handle in {info.handle for info in user_sessions().list(alice.pk)}
        seen.clear()

        middle = len(other_key) - 5  # a character inside the MAC: still canonical base64
        forged = other_key[:middle] + ("A" if other_key[middle] != "A" else "B") + other_key[middle + 1 :]
        assert dict(SessionStore(forged).items()) == {}
        assert [(e.kind, e.reason, e.cookie) for e in seen] == [
            ("invalid_cookie", "bad signature", "sessionid")
        ]
        seen.clear()

        assert user_sessions().revoke_all(alice.pk, keep=current_session(request).sessionware) == 1
        assert [(e.kind, e.user_id, e.reason, e.count) for e in seen] == [("revoke", alice.pk, "all", 1)]
        seen.clear()

        current_session(request).sessionware  # noqa: B018 - loaded, as a request's log-out finds it
        logout(request)
        assert [(e.kind, e.user_id) for e in seen] == [("log_out", alice.pk)]
        seen.clear()
        logout(request)  # an anonymous session's log-out: no event
        assert seen == []


def test_an_async_log_out_fires_its_event_too(memory: MemoryStore, clock: FakeClock) -> None:
    from sessionware.events import Events, SessionEvent

    seen: list[SessionEvent] = []

    async def hook(event: SessionEvent) -> None:
        seen.append(event)

    _, key = _log_in("bob")
    with override_settings(SESSIONWARE={"store": memory, "clock": clock, "events": Events(on_log_out=hook)}):

        async def main() -> None:
            session = SessionStore(key)
            await session.aget("_auth_user_id")
            await session.aflush()

        asyncio.run(main())
    assert [(e.kind, e.user_id) for e in seen] == [("log_out", User.objects.get(username="bob").pk)]


def test_telemetry_counts_django_sessions_and_times_the_store(clock: FakeClock, tmp_path: Path) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from sessionware.telemetry import OpenTelemetry

    reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = OpenTelemetry(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracing)
    store = SQLiteStore(str(tmp_path / "s.db"), clock=clock)
    with override_settings(SESSIONWARE={"store": store, "clock": clock, "telemetry": telemetry}):
        _, key = _log_in("alice")
        assert SessionStore(key)["_auth_user_id"]
        assert dict(SessionStore("i1.forged.key").items()) == {}

        async def main() -> Any:
            return await SessionStore(key).aget("_auth_user_id")

        assert asyncio.run(main())
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    loaded = {p.attributes["outcome"]: p.value for p in found["sessionware.sessions.loaded"]}
    assert loaded["loaded"] >= 2
    assert loaded["refused"] == 1
    assert [(p.attributes, p.value) for p in found["sessionware.log_ins"]] == [({"how": "password"}, 1)]
    assert sum(p.value for p in found["sessionware.sessions.created"]) >= 1
    spans = exporter.get_finished_spans()
    assert {(span.attributes or {})["db.system"] for span in spans} == {"sqlite"}
    operations = [(span.attributes or {})["db.operation.name"] for span in spans]
    assert "create" in operations
    assert operations.count("load") >= 3  # the sync loads and the async one


def test_a_django_log_out_on_the_first_request_after_the_switch_deletes_the_old_row(clock: FakeClock) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user, logout

    from sessionware.events import Events, SessionEvent
    from sessionware.legacy import DjangoDB

    seen: list[SessionEvent] = []
    events = Events(on_log_in=seen.append, on_invalid_cookie=seen.append, on_log_out=seen.append)
    old_key = django_logged_in("db")
    reader = DjangoDB(f"sqlite:///{settings.DATABASES['default']['NAME']}", secret_key=settings.SECRET_KEY)
    store = MemoryStore(clock=clock)
    with override_settings(SESSIONWARE={"store": store, "clock": clock, "legacy": reader, "events": events}):
        request = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={old_key}")
        middleware = SessionMiddleware(lambda request: HttpResponse())
        middleware.process_request(request)
        assert get_user(request).is_authenticated
        assert seen == []  # the previous engine's key is no refused cookie; the log-in is not saved yet
        logout(request)
        middleware.process_response(request, HttpResponse())
        replay = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={old_key}")
        middleware.process_request(replay)
        assert get_user(replay).is_anonymous  # the old row went with the log-out
        assert user_sessions().list(User.objects.get(username="bob").pk) == []
