"""Whole request cycles through the sans-IO engine, with literal clocks and a spying store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sessionware import AAL2, CookieStore, Expiry, MemoryStore, Session, StoreError
from sessionware._closing import close_session
from sessionware._codec import IdCodec
from sessionware._cookies import CookieAttributes
from sessionware._engine import Engine
from sessionware._loading import open_session
from sessionware._steps import run_sync
from sessionware.testing import FakeClock
from sessionware.typing import Change, StoredRecord

from .conftest import OLD_SECRET, SECRET

T0 = 1_800_000_000


class Spy:
    """A MemoryStore that records every call made to it."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryStore(clock=clock)
        self.calls: list[tuple[str, str]] = []

    def load(self, key: str) -> StoredRecord | None:
        self.calls.append(("load", key))
        return self.inner.load(key)

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        self.calls.append(("create", key))
        self.ttls.append(ttl)
        self.changes.append(Change(head, dict(fields), (), ttl, user))
        self.inner.create(key, head, fields, ttl, user)

    def update(self, key: str, change: Change) -> bool:
        self.calls.append(("update", key))
        self.ttls.append(change.ttl)
        self.changes.append(change)
        return self.inner.update(key, change)

    def delete(self, key: str) -> bool:
        self.calls.append(("delete", key))
        return self.inner.delete(key)

    ttls: list[int]
    changes: list[Change]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def spy() -> Spy:
    spy = Spy(FakeClock(T0))
    spy.ttls = []
    spy.changes = []
    return spy


def engine_for(store: Any, secret: Any = SECRET, expiry: Expiry = AAL2, **cookie: Any) -> Engine:
    return Engine(
        secret_key_base=secret, store=store, cookie=CookieAttributes("session", **cookie), expiry=expiry
    )


def steps_store(engine: Engine) -> Any:
    """The store the engine's steps run against: a cookie store's revocation store."""
    store = engine.store
    return store.revocation if isinstance(store, CookieStore) else store


def open_(engine: Engine, cookie: str | None, now: int) -> Session:
    opened = open_session(engine, None if cookie is None else f"session={cookie}", now)
    return opened if isinstance(opened, Session) else run_sync(opened, steps_store(engine))


def close(engine: Engine, session: Session, now: int, status: int = 200) -> str | None:
    closed = close_session(engine, session, status, now, False)
    if closed is None or isinstance(closed, str):
        return closed
    return run_sync(closed, steps_store(engine))


def value_of(set_cookie: str | None) -> str:
    assert set_cookie is not None
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def write(engine: Engine, cookie: str | None, now: int, **data: Any) -> str | None:
    session = open_(engine, cookie, now)
    session.update(data)
    out = close(engine, session, now)
    return value_of(out) if out is not None else cookie


def test_no_cookie_and_an_untouched_session_cost_no_store_call(spy: Spy) -> None:
    engine = engine_for(spy)
    session = open_(engine, None, T0)
    assert close(engine, session, T0) is None
    assert spy.calls == []


def test_a_forged_id_is_refused_without_touching_the_store(spy: Spy) -> None:
    engine = engine_for(spy)
    forged = IdCodec(__import__("sessionware._keys", fromlist=["KeyRing"]).KeyRing(OLD_SECRET), "session")
    session = open_(engine, forged.encode(IdCodec.new_id()), T0)
    assert session.is_new
    assert spy.calls == []


def test_an_unknown_id_is_never_adopted(spy: Spy) -> None:
    engine = engine_for(spy)
    planted = engine.ids.encode(IdCodec.new_id())  # type: ignore[union-attr]  # validly signed, never stored
    session = open_(engine, planted, T0)
    assert session.is_new
    session["user"] = "victim"
    issued = value_of(close(engine, session, T0))
    assert issued != planted
    assert spy.inner.load(IdCodec.store_key(engine.ids.decode(planted)[0])) is None  # type: ignore[union-attr]
    assert len(spy.inner) == 1


def test_renew_deletes_the_old_record(spy: Spy) -> None:
    engine = engine_for(spy)
    old = write(engine, None, T0, a=1)
    session = open_(engine, old, T0 + 1)
    session.renew()
    new = value_of(close(engine, session, T0 + 1))
    assert new != old
    assert spy.names()[-2:] == ["create", "delete"]  # the new record exists before the old one goes
    assert open_(engine, old, T0 + 2).is_new
    assert open_(engine, new, T0 + 2) == {"a": 1}
    assert len(spy.inner) == 1


def test_drop_deletes_the_record_and_expires_the_cookie(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=1)
    session = open_(engine, cookie, T0 + 1)
    session.drop()
    out = close(engine, session, T0 + 1)
    assert out is not None
    assert "Max-Age=0" in out
    assert spy.names()[-1] == "delete"
    assert len(spy.inner) == 0


def test_a_read_only_request_costs_one_load_and_no_write_inside_the_touch_interval(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=1)
    spy.calls.clear()
    for offset in (1, 30, 59):
        session = open_(engine, cookie, T0 + offset)
        assert session["a"] == 1
        assert close(engine, session, T0 + offset) is None
    assert spy.names() == ["load", "load", "load"]


def test_a_read_only_request_after_the_touch_interval_records_activity_once(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=1)
    spy.calls.clear()
    session = open_(engine, cookie, T0 + 60)
    assert close(engine, session, T0 + 60) is None  # the ID cookie itself does not change
    assert spy.names() == ["load", "update"]
    assert spy.changes[-1].fields == {}  # a touch sends the head alone
    spy.calls.clear()
    session = open_(engine, cookie, T0 + 61)
    close(engine, session, T0 + 61)
    assert spy.names() == ["load"]
    # the idle deadline now counts from T0 + 60
    assert not open_(engine, cookie, T0 + 60 + 30 * 60 - 1).is_new
    assert open_(engine, cookie, T0 + 60 + 30 * 60).is_new


def test_cookie_stores_touch_by_reissuing_the_cookie() -> None:
    engine = engine_for(CookieStore())
    cookie = write(engine, None, T0, a=1)
    session = open_(engine, cookie, T0 + 59)
    assert close(engine, session, T0 + 59) is None
    session = open_(engine, cookie, T0 + 60)
    touched = value_of(close(engine, session, T0 + 60))
    assert open_(engine, touched, T0 + 60 + 30 * 60 - 1) == {"a": 1}
    assert open_(engine, cookie, T0 + 30 * 60).is_new


def test_the_store_ttl_is_the_time_to_the_nearer_deadline(spy: Spy) -> None:
    engine = engine_for(spy, expiry=Expiry(idle_timeout=600, absolute_timeout=1000))
    cookie = write(engine, None, T0, a=1)
    write(engine, cookie, T0 + 500, a=2)
    assert spy.ttls == [600, 500]


@pytest.mark.parametrize("store_kind", ["cookie", "memory"])
def test_idle_and_absolute_expiry_at_their_exact_boundaries(store_kind: str) -> None:
    store = CookieStore() if store_kind == "cookie" else MemoryStore(clock=FakeClock(T0))
    engine = engine_for(store, expiry=Expiry(idle_timeout=600, absolute_timeout=1000, touch_interval=0))
    idle = write(engine, None, T0, a=1)
    assert not open_(engine, idle, T0 + 599).is_new
    assert open_(engine, idle, T0 + 600).is_new
    # activity slides the idle deadline but never the absolute one
    cookie = write(engine, None, T0, a=1)
    for now in (T0 + 500, T0 + 999):
        session = open_(engine, cookie, now)
        assert not session.is_new
        session["a"] = now
        out = close(engine, session, now)
        if store_kind == "cookie":
            cookie = value_of(out)
    assert open_(engine, cookie, T0 + 1000).is_new


def test_an_expired_server_record_is_deleted_when_met(spy: Spy) -> None:
    engine = engine_for(spy, expiry=Expiry(idle_timeout=600, absolute_timeout=None))
    cookie = write(engine, None, T0, a=1)
    spy.calls.clear()
    assert open_(engine, cookie, T0 + 600).is_new
    assert spy.names() == ["load", "delete"]


def test_a_cookie_made_under_an_older_secret_is_reissued_under_the_current_one() -> None:
    old_engine = engine_for(CookieStore(), secret=OLD_SECRET)
    cookie = write(old_engine, None, T0, a=1)
    engine = engine_for(CookieStore(), secret=[SECRET, OLD_SECRET])
    session = open_(engine, cookie, T0 + 1)
    assert session == {"a": 1}
    reissued = value_of(close(engine, session, T0 + 1))
    assert open_(engine_for(CookieStore(), secret=SECRET), reissued, T0 + 2) == {"a": 1}
    assert open_(engine_for(CookieStore(), secret=SECRET), cookie, T0 + 2).is_new


def test_a_server_side_id_signed_by_an_older_secret_is_resigned_without_a_store_write(spy: Spy) -> None:
    cookie = write(engine_for(spy, secret=OLD_SECRET), None, T0, a=1)
    engine = engine_for(spy, secret=[SECRET, OLD_SECRET])
    spy.calls.clear()
    session = open_(engine, cookie, T0 + 1)
    reissued = value_of(close(engine, session, T0 + 1))
    assert spy.names() == ["load"]
    assert open_(engine_for(spy, secret=SECRET), reissued, T0 + 2) == {"a": 1}


def test_concurrent_changes_to_different_keys_are_both_kept(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=0, b=0, c=0)
    first = open_(engine, cookie, T0 + 1)
    second = open_(engine, cookie, T0 + 1)
    first["a"] = 1
    second["b"] = 2
    del second["c"]
    spy.calls.clear()
    close(engine, first, T0 + 1)
    close(engine, second, T0 + 1)
    assert open_(engine, cookie, T0 + 2) == {"a": 1, "b": 2}
    assert spy.names() == ["update", "update", "load"]  # one write each: no reload, no retry
    assert [(dict(c.fields), tuple(c.removed)) for c in spy.changes[-2:]] == [
        ({"a": "1"}, ()),
        ({"b": "2"}, ("c",)),
    ]


def test_concurrent_changes_to_the_same_key_last_writer_wins(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=0)
    first = open_(engine, cookie, T0 + 1)
    second = open_(engine, cookie, T0 + 1)
    first["a"] = "first"
    second["a"] = "second"
    close(engine, first, T0 + 1)
    close(engine, second, T0 + 1)
    assert open_(engine, cookie, T0 + 2) == {"a": "second"}


def test_a_request_that_loaded_a_session_before_it_was_dropped_cannot_bring_it_back(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, user="alice")
    slow = open_(engine, cookie, T0 + 1)
    logout = open_(engine, cookie, T0 + 1)
    logout.drop()
    close(engine, logout, T0 + 1)
    slow["cart"] = ["book"]
    assert close(engine, slow, T0 + 2) is None
    assert open_(engine, cookie, T0 + 3).is_new
    assert len(spy.inner) == 0


def test_a_write_sends_only_this_requests_changes_in_one_update(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, keep="same", cart=[1], gone=True)
    session = open_(engine, cookie, T0 + 1)
    session["cart"].append(2)  # an in-place edit
    del session["gone"]
    session["new"] = {"x": None}
    spy.calls.clear()
    assert close(engine, session, T0 + 1) is None  # the ID cookie does not change
    assert spy.names() == ["update"]
    change = spy.changes[-1]
    assert dict(change.fields) == {"cart": "[1,2]", "new": '{"x":null}'}
    assert tuple(change.removed) == ("gone",)
    assert open_(engine, cookie, T0 + 2) == {"keep": "same", "cart": [1, 2], "new": {"x": None}}


def test_a_write_to_a_session_deleted_meanwhile_is_not_retried_and_not_brought_back(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, a=0)
    session = open_(engine, cookie, T0 + 1)
    session["a"] = 1
    assert spy.inner.delete(IdCodec.store_key(engine.ids.decode(cookie)[0]))  # type: ignore[union-attr,arg-type]
    spy.calls.clear()
    assert close(engine, session, T0 + 1) is None
    assert spy.names() == ["update"]
    assert len(spy.inner) == 0


def test_a_store_exception_becomes_a_store_error_naming_the_call(spy: Spy) -> None:
    engine = engine_for(spy)

    def broken(key: str) -> None:
        raise ConnectionError("connection refused")

    spy.inner.load = broken  # type: ignore[method-assign]
    cookie = write(engine_for(MemoryStore()), None, T0, a=1)
    with pytest.raises(StoreError, match=r"load\(\) failed"):
        open_(engine, cookie, T0)


def test_a_new_session_written_with_empty_data_is_not_stored(spy: Spy) -> None:
    engine = engine_for(spy)
    session = open_(engine, None, T0)
    session["a"] = 1
    del session["a"]
    assert close(engine, session, T0) is None
    assert spy.calls == []


def test_renew_on_a_new_session_creates_it_even_when_empty(spy: Spy) -> None:
    engine = engine_for(spy)
    session = open_(engine, None, T0)
    session.renew()
    assert close(engine, session, T0) is not None
    assert spy.names() == ["create"]


def test_renewing_a_session_dropped_by_a_concurrent_request_does_not_bring_it_back(spy: Spy) -> None:
    engine = engine_for(spy)
    cookie = write(engine, None, T0, user="alice")
    login_again = open_(engine, cookie, T0 + 1)
    logout = open_(engine, cookie, T0 + 1)
    logout.drop()
    close(engine, logout, T0 + 1)
    login_again.renew()
    out = close(engine, login_again, T0 + 2)
    assert out is not None
    assert "Max-Age=0" in out  # the stale cookie is expired, no new one issued
    assert len(spy.inner) == 0


def log_in_cookie(engine: Engine, now: int) -> str:
    session = open_(engine, None, now)
    session.log_in("alice")
    return value_of(close(engine, session, now))


@pytest.mark.parametrize("kind", ["server", "cookie"])
def test_concurrent_requests_re_filing_a_session_from_an_older_secret_log_nobody_out(
    spy: Spy, kind: str
) -> None:
    store: Any = spy if kind == "server" else CookieStore(revocation=spy)
    cookie = log_in_cookie(engine_for(store, secret=OLD_SECRET), T0)
    engine = engine_for(store, secret=[SECRET, OLD_SECRET])
    first, second = open_(engine, cookie, T0 + 1), open_(engine, cookie, T0 + 1)
    won = close(engine, first, T0 + 1)
    assert won is not None
    assert "Max-Age=0" not in won  # re-filed under the current secret: a new cookie
    assert close(engine, second, T0 + 1) is None  # the loser leaves the winner's cookie alone
    assert open_(engine, value_of(won), T0 + 2).user_id == "alice"
    assert open_(engine_for(store, secret=SECRET), value_of(won), T0 + 2).user_id == "alice"


@pytest.mark.parametrize("kind", ["server", "cookie"])
def test_a_server_whose_clock_is_behind_never_writes_a_corrupt_record(spy: Spy, kind: str) -> None:
    store: Any = spy if kind == "server" else CookieStore(revocation=spy)
    engine = engine_for(store)
    cookie = log_in_cookie(engine, T0 + 20)  # on the server that is 20 s ahead
    session = open_(engine, cookie, T0)  # the next request lands on one 20 s behind, and writes
    session["flash"] = "welcome"
    cookie = value_of(close(engine, session, T0)) if kind == "cookie" else cookie
    assert open_(engine, cookie, T0 + 1).user_id == "alice"
    assert open_(engine, cookie, T0 + 21).user_id == "alice"


def test_non_str_keys_are_refused_rather_than_silently_converted() -> None:
    from sessionware import SerializationError
    from sessionware._record import dump_data

    with pytest.raises(SerializationError, match="not a str"):
        dump_data(Session({1: "a"}))  # type: ignore[dict-item]
    with pytest.raises(SerializationError) as caught:
        dump_data(Session({"prefs": {"nested": [{2: "b"}]}}))
    assert caught.value.key == "prefs"
    assert dump_data(Session({"ok": {"nested": [{"fine": (1, 2)}]}})) == b'{"ok":{"nested":[{"fine":[1,2]}]}}'


def test_a_persistent_unlimited_session_gets_a_long_max_age_not_a_browser_session_cookie() -> None:
    engine = engine_for(
        CookieStore(),
        expiry=Expiry(idle_timeout=None, absolute_timeout=None, allow_unlimited=True),
        persistent=True,
    )
    session = open_(engine, None, T0)
    session["a"] = 1
    out = close(engine, session, T0)
    assert out is not None
    assert f"Max-Age={400 * 24 * 3600}" in out


def test_a_repeated_cookie_is_verified_once_and_expiry_is_still_checked_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessionware._codec import EncryptedCodec

    expiry = Expiry(idle_timeout=600, absolute_timeout=None)
    cookie = write(engine_for(CookieStore(), expiry=expiry), None, T0, a=1)  # made by another instance
    engine = engine_for(CookieStore(), expiry=expiry)
    decodes: list[str] = []
    original = EncryptedCodec.decode

    def counting(self: EncryptedCodec, value: str) -> tuple[bytes, bool]:
        decodes.append(value)
        return original(self, value)

    monkeypatch.setattr(EncryptedCodec, "decode", counting)
    for offset in (1, 2, 3):
        session = open_(engine, cookie, T0 + offset)
        assert session == {"a": 1}
        session["a"] = 2  # each request gets its own data, not a shared dict
    assert len(decodes) == 1
    assert open_(engine, cookie, T0 + 600).is_new  # a cached cookie still expires


def test_a_cookie_the_engine_just_issued_is_read_back_without_decrypting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessionware._codec import EncryptedCodec

    engine = engine_for(CookieStore())
    cookie = write(engine, None, T0, a=1, nested={"b": [1]})
    monkeypatch.setattr(EncryptedCodec, "decode", None)  # any decryption would fail the test
    session = open_(engine, cookie, T0 + 1)
    assert session == {"a": 1, "nested": {"b": [1]}}
    session["nested"]["b"].append(2)
    written = value_of(close(engine, session, T0 + 1))
    assert open_(engine, written, T0 + 2) == {"a": 1, "nested": {"b": [1, 2]}}


def test_values_that_fail_verification_are_never_cached() -> None:
    engine = engine_for(CookieStore())
    cookie = write(engine, None, T0, a=1)
    assert cookie is not None
    assert open_(engine, cookie, T0) == {"a": 1}
    tampered = {cookie[:-2] + f"{n:02d}" for n in range(50)} - {cookie}  # a cookie may end in "34"
    for value in tampered:
        assert open_(engine, value, T0).is_new
    assert len(engine.verified) == 1


def test_the_cache_is_bounded_and_can_be_turned_off(spy: Spy) -> None:
    engine = Engine(
        secret_key_base=SECRET,
        store=CookieStore(),
        cookie=CookieAttributes("session"),
        expiry=AAL2,
        cookie_cache=5,
    )
    cookies = [write(engine, None, T0, n=n) for n in range(20)]
    for n, cookie in enumerate(cookies):
        assert open_(engine, cookie, T0 + 1) == {"n": n}
    assert len(engine.verified) == 5
    off = Engine(
        secret_key_base=SECRET, store=spy, cookie=CookieAttributes("session"), expiry=AAL2, cookie_cache=0
    )
    cookie = write(off, None, T0, a=1)
    open_(off, cookie, T0 + 1)
    assert len(off.verified) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "many", None])
def test_a_bad_cookie_cache_size_is_refused(bad: object) -> None:
    from sessionware import ConfigurationError

    with pytest.raises(ConfigurationError, match="cookie_cache"):
        Engine(
            secret_key_base=SECRET,
            store=CookieStore(),
            cookie=CookieAttributes("session"),
            expiry=AAL2,
            cookie_cache=bad,  # type: ignore[arg-type]
        )


def test_an_anonymous_cookie_session_holding_a_uid_key_asks_the_revocation_store_nothing(spy: Spy) -> None:
    """Only a log-in makes a revocation record; the app's own data named "uid" is just data."""
    engine = engine_for(CookieStore(revocation=spy))
    cookie = write(engine, None, T0, uid=42, note="my own uid key")
    assert spy.calls == []
    assert open_(engine, cookie, T0 + 1)["uid"] == 42
    assert spy.calls == []
