"""Switching from Flask-Session, starsessions or Django logs nobody out (``sessionware.legacy``).

Every old session here is written by the real peer library, installed in the
test environment: a Flask app with ``flask_session.Session`` on Redis, a
Starlette app with starsessions' ``SessionMiddleware`` (``RedisStore`` and
``CookieStore``), and Django's own ``db``, ``cached_db``, ``cache`` (on Django's
``RedisCache``) and ``signed_cookies`` backends (with ``django.contrib.auth.login``).
sessionware's WSGI and ASGI middleware then read it through a reader, once.
"""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import flask
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client

from sessionware import MemoryStore, SessionMiddleware, get_session
from sessionware import wsgi as sw_wsgi
from sessionware.errors import ConfigurationError
from sessionware.legacy import (
    DjangoCache,
    DjangoDB,
    DjangoSignedCookies,
    FlaskSessionRedis,
    LegacyReader,
    StarsessionsCookie,
    StarsessionsRedis,
)

from . import django_support, servers
from .conftest import SECRET, unique_prefix
from .django_support import django_logged_in, django_redis_cache

FLASK_SECRET = "the Flask app's SECRET_KEY, which signed its session IDs"
OURS = ("e1.", "s1.", "i1.")


# -- the sessionware side: a WSGI and an ASGI app reporting the session ---------


def report(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = sw_wsgi.get_session(environ)
    if environ.get("PATH_INFO") == "/logout":
        session.log_out()
    body = json.dumps({"data": dict(session), "user": session.user_id}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def wsgi_client(reader: Any, store: Any = None) -> Client:
    app = sw_wsgi.SessionMiddleware(
        report, secret_key_base=SECRET, store=store or MemoryStore(), legacy=reader
    )
    return Client(app, use_cookies=False)


async def asgi_report(request: Request) -> JSONResponse:
    session = get_session(request)
    return JSONResponse({"data": dict(session), "user": session.user_id})


def asgi_client(reader: Any, store: Any = None) -> TestClient:
    app = Starlette(routes=[Route("/", asgi_report)])
    wrapped = SessionMiddleware(app, secret_key_base=SECRET, store=store or MemoryStore(), legacy=reader)
    return TestClient(wrapped)


def get_json(client: Client | TestClient, cookie: str) -> tuple[dict[str, Any], list[str]]:
    """The session the app saw, and the response's ``Set-Cookie`` headers (either test client)."""
    if isinstance(client, TestClient):
        reply = client.get("/", headers={"Cookie": cookie})
        assert reply.status_code == 200
        client.cookies.clear()
        return reply.json(), reply.headers.get_list("set-cookie")
    response = client.get("/", headers={"Cookie": cookie})
    assert response.status_code == 200
    return response.get_json(), response.headers.getlist("Set-Cookie")


def set_cookie_named(set_cookies: list[str], name: str) -> str | None:
    for header in set_cookies:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if name in parsed:
            return parsed[name].value
    return None


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- Flask-Session 0.8 on Redis ----------------------------------------------------


def flask_session_cookie(client_redis: redis.Redis, prefix: str, **config: Any) -> tuple[str, flask.Flask]:
    """A session Flask-Session wrote: logged in the way Flask-Login does it, a cart, a flag."""
    import flask_session

    app = flask.Flask(__name__)
    app.config.update(
        SECRET_KEY=FLASK_SECRET, SESSION_TYPE="redis", SESSION_REDIS=client_redis, SESSION_KEY_PREFIX=prefix
    )
    app.config.update(config)
    with warnings.catch_warnings():  # SESSION_USE_SIGNER is deprecated in 0.8, and still used
        warnings.simplefilter("ignore", DeprecationWarning)
        flask_session.Session(app)

    @app.get("/login")
    def login() -> str:
        flask.session["_user_id"] = "42"  # what flask_login.login_user stores
        flask.session["_fresh"] = True
        flask.session["cart"] = [1, 2, 3]
        return "ok"

    client = app.test_client()
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert not cookie.value.startswith(OURS)
    return cookie.value, app


def flask_reading(client_redis: redis.Redis, prefix: str) -> flask.Flask:
    """A Flask app on sessionware that reads Flask-Session's records under ``prefix``."""
    from sessionware.flask import Sessionware

    app = flask.Flask(__name__)
    Sessionware(
        app,
        secret_key_base=SECRET,
        store=MemoryStore(),
        legacy=FlaskSessionRedis(client_redis, key_prefix=prefix),
    )
    return app


class TestFlaskSession:
    def test_a_logged_in_flask_session_user_stays_logged_in(self, redis_client: redis.Redis) -> None:
        """The data, and a real log-in as Flask-Login's ``_user_id``; the old record is deleted."""
        prefix = unique_prefix() + "session:"
        value, _ = flask_session_cookie(redis_client, prefix)
        assert redis_client.exists(prefix + value)
        client = wsgi_client(FlaskSessionRedis(redis_client, key_prefix=prefix))
        body, set_cookies = get_json(client, f"session={value}")
        assert body["user"] == "42"
        assert body["data"]["cart"] == [1, 2, 3]
        assert body["data"]["_user_id"] == "42"
        new = set_cookie_named(set_cookies, "session")
        assert new is not None
        assert new.startswith("i1.")
        assert not redis_client.exists(prefix + value)  # delete=True: read once
        # the next request carries sessionware's cookie and is still logged in
        again = client.get("/", headers={"Cookie": f"session={new}"}).get_json()
        assert again["user"] == "42"

    def test_a_signed_id_with_the_json_format_and_delete_false(self, redis_client: redis.Redis) -> None:
        prefix = unique_prefix()
        value, _ = flask_session_cookie(
            redis_client, prefix, SESSION_USE_SIGNER=True, SESSION_SERIALIZATION_FORMAT="json"
        )
        sid = value.rsplit(".", 1)[0]
        raw = redis_client.get(prefix + sid)
        assert isinstance(raw, bytes)
        assert raw.startswith(b"{")  # SESSION_SERIALIZATION_FORMAT="json"
        reader = FlaskSessionRedis(
            redis_client, key_prefix=prefix, use_signer=True, secret_key=FLASK_SECRET, delete=False
        )
        body, _ = get_json(asgi_client(reader), f"session={value}")
        assert body["user"] == "42"
        assert redis_client.exists(prefix + sid)  # left for a roll-back

    def test_wrong_secret_or_prefix_or_a_pickle_leave_the_user_anonymous(
        self, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        prefix = unique_prefix()
        value, _ = flask_session_cookie(redis_client, prefix, SESSION_USE_SIGNER=True)
        caplog.set_level(logging.DEBUG, logger="sessionware")
        wrong_key = FlaskSessionRedis(
            redis_client, key_prefix=prefix, use_signer=True, secret_key="another app's secret key"
        )
        body, _ = get_json(wsgi_client(wrong_key), f"session={value}")
        assert body == {"data": {}, "user": None}
        assert "bad signature" in caplog.text
        other_prefix = FlaskSessionRedis(
            redis_client, key_prefix="other:", use_signer=True, secret_key=FLASK_SECRET
        )
        body, _ = get_json(wsgi_client(other_prefix), f"session={value}")
        assert body == {"data": {}, "user": None}
        assert "no record" in caplog.text
        # Flask-Session before 0.7 pickled its records: refused, never unpickled.
        redis_client.set(prefix + "pickled", pickle.dumps({"_user_id": "1"}))
        body, _ = get_json(wsgi_client(FlaskSessionRedis(redis_client, key_prefix=prefix)), "session=pickled")
        assert body == {"data": {}, "user": None}
        assert "pickle is never unpickled" in caplog.text
        redis_client.set(prefix + "garbage", b"\xc1 not msgpack")
        body, _ = get_json(wsgi_client(FlaskSessionRedis(redis_client, key_prefix=prefix)), "session=garbage")
        assert body == {"data": {}, "user": None}

    def test_the_flask_extension_takes_the_reader(self, redis_client: redis.Redis) -> None:
        prefix = unique_prefix()
        value, _ = flask_session_cookie(redis_client, prefix)
        app = flask_reading(redis_client, prefix)
        app.config["SECRET_KEY"] = FLASK_SECRET

        @app.get("/")
        def show() -> dict[str, Any]:
            from sessionware.flask import current_session

            return {"user": current_session().user_id, "cart": flask.session.get("cart")}

        client = app.test_client()
        client.set_cookie("session", value)
        assert client.get("/").get_json() == {"user": "42", "cart": [1, 2, 3]}


# -- starsessions ------------------------------------------------------------------


def starsessions_cookie(store: Any, lifetime: int = 0, close: Any = None) -> str:
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarsessionsMiddleware

    async def write(request: Request) -> JSONResponse:
        request.session["user"] = "ada"
        request.session["theme"] = "dark"
        return JSONResponse({})

    app = Starlette(routes=[Route("/", write)])
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(StarsessionsMiddleware, store=store, cookie_https_only=False, lifetime=lifetime)
    with TestClient(app) as client:
        response = client.get("/")
        if close is not None:
            assert client.portal is not None
            client.portal.call(close)  # the asyncio Redis client, on the loop it ran on
    value = set_cookie_named(response.headers.get_list("set-cookie"), "session")
    assert value
    return value


class TestStarsessions:
    def test_a_redis_store_session_is_kept(self, redis_url: str, redis_client: redis.Redis) -> None:
        import redis.asyncio
        from starsessions.stores.redis import RedisStore

        prefix = unique_prefix()
        connection = redis.asyncio.Redis.from_url(redis_url)
        value = starsessions_cookie(RedisStore(connection=connection, prefix=prefix), close=connection.aclose)
        reader = StarsessionsRedis(redis_client, prefix=prefix, user_key="user")
        body, set_cookies = get_json(asgi_client(reader), f"session={value}")
        assert body == {"data": {"user": "ada", "theme": "dark"}, "user": "ada"}  # __metadata__ dropped
        assert set_cookie_named(
            set_cookies,
            "session",
        ).startswith("i1.")  # type: ignore[union-attr]
        assert not redis_client.exists(prefix + value)

    def test_a_cookie_store_session_is_kept_and_a_wrong_secret_is_not(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        from starsessions.stores.cookie import CookieStore as StarsessionsCookieStore

        old_secret = "starsessions' CookieStore secret"
        value = starsessions_cookie(StarsessionsCookieStore(secret_key=old_secret), lifetime=3600)
        body, _ = get_json(asgi_client(StarsessionsCookie(old_secret, lifetime=3600)), f"session={value}")
        assert body["data"] == {"user": "ada", "theme": "dark"}
        assert body["user"] is None  # no user_key: nobody is logged in
        caplog.set_level(logging.DEBUG, logger="sessionware")
        body, _ = get_json(asgi_client(StarsessionsCookie("another secret")), f"session={value}")
        assert body == {"data": {}, "user": None}
        assert "bad or expired signature" in caplog.text


# -- Django ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_ready() -> None:
    django_support.setup()


def django_database() -> str:
    from django.conf import settings

    return str(settings.DATABASES["default"]["NAME"])


@pytest.mark.usefixtures("django_ready")
class TestDjango:
    @pytest.mark.parametrize("backend", ["db", "cached_db"])
    def test_a_logged_in_django_user_stays_logged_in(self, backend: str) -> None:
        from django.conf import settings
        from django.contrib.auth.models import User

        key = django_logged_in(backend)
        reader = DjangoDB(f"sqlite:///{django_database()}", secret_key=settings.SECRET_KEY)
        body, set_cookies = get_json(wsgi_client(reader), f"sessionid={key}")
        assert body["user"] == str(User.objects.get(username="bob").pk)
        assert body["data"]["cart"] == ["apples"]
        assert set_cookie_named(set_cookies, "session").startswith("i1.")  # type: ignore[union-attr]
        assert any(
            c.startswith("sessionid=;") and "Max-Age=0" in c for c in set_cookies
        )  # the old cookie goes
        with sqlite3.connect(django_database()) as connection:  # delete=True: the row is gone
            assert (
                connection.execute("SELECT 1 FROM django_session WHERE session_key = ?", (key,)).fetchone()
                is None
            )

    def test_postgres_rows_are_read_too(self) -> None:
        """The row Django wrote, moved as it is to PostgreSQL (Django's PG backend stores the same text)."""
        import psycopg
        from django.conf import settings

        key = django_logged_in("db")
        with sqlite3.connect(django_database()) as connection:
            row = connection.execute(
                "SELECT session_key, session_data, expire_date FROM django_session WHERE session_key = ?",
                (key,),
            ).fetchone()
        table = unique_prefix().replace("-", "_").rstrip(":").lower() + "django_session"
        with psycopg.connect(servers.POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(
                f"CREATE TABLE {table} (session_key varchar(40) PRIMARY KEY,"
                " session_data text, expire_date timestamptz)"
            )
            try:
                connection.execute(
                    f"INSERT INTO {table} VALUES (%s, %s, %s)",  # noqa: S608 - the test's own table name
                    (row[0], row[1], row[2] + "+00:00"),
                )
                reader = DjangoDB(servers.POSTGRES_DSN, secret_key=settings.SECRET_KEY, table=table)
                body, _ = get_json(asgi_client(reader), f"sessionid={key}")
                assert body["data"]["cart"] == ["apples"]
                assert body["user"] is not None
                assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # noqa: S608
            finally:
                connection.execute(f"DROP TABLE {table}")

    def test_signed_cookies_are_read_and_another_apps_are_not(self, caplog: pytest.LogCaptureFixture) -> None:
        from django.conf import settings

        value = django_logged_in("signed_cookies")
        body, _ = get_json(asgi_client(DjangoSignedCookies(settings.SECRET_KEY)), f"sessionid={value}")
        assert body["data"]["cart"] == ["apples"]
        assert body["user"] is not None
        # Another app on the same domain, same SESSION_COOKIE_NAME, its own SECRET_KEY: not read.
        caplog.set_level(logging.DEBUG, logger="sessionware")
        body, _ = get_json(
            asgi_client(DjangoSignedCookies("another Django app's SECRET_KEY")), f"sessionid={value}"
        )
        assert body == {"data": {}, "user": None}
        assert "bad signature" in caplog.text
        # A rotated key: the old one as a fallback still reads it.
        rotated = DjangoSignedCookies("the new SECRET_KEY", fallback_keys=[settings.SECRET_KEY])
        assert get_json(asgi_client(rotated), f"sessionid={value}")[0]["user"] is not None

    def test_expired_tampered_and_unknown_django_sessions_are_anonymous(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        from django.conf import settings

        caplog.set_level(logging.DEBUG, logger="sessionware")
        key = django_logged_in("db")
        with sqlite3.connect(django_database()) as connection:
            connection.execute(
                "UPDATE django_session SET expire_date = '2000-01-01 00:00:00' WHERE session_key = ?", (key,)
            )
        reader = DjangoDB(f"sqlite:///{django_database()}", secret_key=settings.SECRET_KEY)
        assert get_json(wsgi_client(reader), f"sessionid={key}")[0] == {"data": {}, "user": None}
        assert "expired" in caplog.text
        other = DjangoDB(f"sqlite:///{django_database()}", secret_key="another app's secret")
        fresh = django_logged_in("db")
        assert get_json(wsgi_client(other), f"sessionid={fresh}")[0] == {"data": {}, "user": None}
        assert get_json(wsgi_client(reader), "sessionid=nosuchkey0000000")[0] == {"data": {}, "user": None}
        assert get_json(wsgi_client(reader), "sessionid=not a key!")[0] == {"data": {}, "user": None}
        signed = django_logged_in("signed_cookies")
        short = DjangoSignedCookies(settings.SECRET_KEY, max_age=-1)
        assert get_json(asgi_client(short), f"sessionid={signed}")[0] == {"data": {}, "user": None}
        assert "older than" in caplog.text

    @pytest.mark.parametrize("client_kind", ["wsgi", "asgi"])
    def test_a_django_cache_session_on_redis_stays_logged_in(
        self, client_kind: str, redis_url: str, redis_client: redis.Redis
    ) -> None:
        from django.contrib.auth.models import User

        prefix = unique_prefix()
        with django_redis_cache(redis_url, prefix):
            key = django_logged_in("cache")
        entry = f"{prefix}:1:django.contrib.sessions.cache{key}"
        assert redis_client.get(entry)[:1] == b"\x80"  # type: ignore[index]  # Django's cache pickled it
        reader = DjangoCache(redis_client, key_prefix=prefix)
        client = wsgi_client(reader) if client_kind == "wsgi" else asgi_client(reader)
        body, set_cookies = get_json(client, f"sessionid={key}")
        assert body["user"] == str(User.objects.get(username="bob").pk)
        assert body["data"]["cart"] == ["apples"]
        assert body["data"]["_auth_user_backend"] == "django.contrib.auth.backends.ModelBackend"
        assert set_cookie_named(set_cookies, "session").startswith("i1.")  # type: ignore[union-attr]
        assert redis_client.exists(entry) == 0  # delete=True

    def test_a_django_cache_session_holding_more_than_data_is_never_unpickled(
        self, redis_url: str, redis_client: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        import datetime

        from django.contrib.sessions.backends.cache import SessionStore

        caplog.set_level(logging.DEBUG, logger="sessionware")
        prefix = unique_prefix()
        with django_redis_cache(redis_url, prefix):
            store = SessionStore()
            store["_auth_user_id"] = "1"
            store["last_seen"] = datetime.datetime.now(datetime.UTC)  # Django's cache pickles it as is
            store.save()
            key = store.session_key
        reader = DjangoCache(redis_client, key_prefix=prefix, delete=False)
        assert get_json(wsgi_client(reader), f"sessionid={key}")[0] == {"data": {}, "user": None}
        assert "never unpickled" in caplog.text
        assert "STACK_GLOBAL" in caplog.text

        # An attacker who can write the cache: a gadget under a session's entry does not run.
        sentinel = tmp_path / "ran"
        gadget = pickle.dumps({"_auth_user_id": "1", "x": RunsACommand(sentinel)}, 5)
        redis_client.set(f"{prefix}:1:django.contrib.sessions.cache{key}", gadget, ex=60)
        assert get_json(asgi_client(reader), f"sessionid={key}")[0] == {"data": {}, "user": None}
        assert not sentinel.exists()

    def test_another_apps_django_cache_sessions_are_not_read(
        self, redis_url: str, redis_client: redis.Redis
    ) -> None:
        prefix = unique_prefix()
        with django_redis_cache(redis_url, prefix):
            key = django_logged_in("cache")
        # The same SESSION_COOKIE_NAME on the same domain, but another cache prefix or version.
        for reader in (
            DjangoCache(redis_client, key_prefix=prefix + "other"),
            DjangoCache(redis_client, key_prefix=prefix, version=2),
        ):
            assert get_json(wsgi_client(reader), f"sessionid={key}")[0] == {"data": {}, "user": None}
        assert get_json(wsgi_client(DjangoCache(redis_client, key_prefix=prefix)), f"sessionid={key}")[0][
            "user"
        ]  # still there for the right reader
        with pytest.raises(ConfigurationError, match="version"):
            DjangoCache(redis_client, version="1")  # type: ignore[arg-type]


class RunsACommand:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.sentinel}",))


# -- the reader machinery ------------------------------------------------------------


class Counting:
    """A reader that counts its reads: the first request pays one, later ones none."""

    cookie_name: str = "old"
    user_key: str | None = "uid"
    blocking: bool = True

    def __init__(self) -> None:
        self.reads = 0

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        self.reads += 1
        return {"uid": 7, "from": value} if value == "good" else None


def test_only_the_first_request_pays_for_the_reader_and_log_out_ends_the_old_session() -> None:
    reader = Counting()
    assert isinstance(reader, LegacyReader)
    client = wsgi_client(reader)
    body, set_cookies = get_json(client, "old=good")
    assert body == {"data": {"uid": 7, "from": "good"}, "user": 7}
    new = set_cookie_named(set_cookies, "session")
    assert reader.reads == 1
    for _ in range(3):  # the browser still sends the old cookie, if it kept it: never read again
        assert get_json(client, f"session={new}; old=good")[0]["user"] == 7
    assert reader.reads == 1
    assert get_json(client, "nothing=here")[0]["user"] is None
    assert reader.reads == 1  # no cookie of its name: not asked
    response = client.get("/logout", headers={"Cookie": f"session={new}"})
    assert response.status_code == 200


def test_an_asgi_reader_that_blocks_runs_off_the_event_loop() -> None:
    import threading

    seen: list[str] = []

    class Blocking(Counting):
        def read(self, value: str, now: int) -> dict[str, Any] | None:
            seen.append(threading.current_thread().name)
            return super().read(value, now)

    body, _ = get_json(asgi_client(Blocking()), "old=good")
    assert body["user"] == 7
    assert seen
    assert seen[0] != threading.main_thread().name


def test_an_old_store_that_fails_fails_the_request_closed() -> None:
    class Down(Counting):
        def read(self, value: str, now: int) -> dict[str, Any] | None:
            from sessionware.legacy import _fetch

            return _fetch("Down", lambda: (_ for _ in ()).throw(ConnectionError("refused")))  # type: ignore[no-any-return]

    client = wsgi_client(Down())
    assert client.get("/", headers={"Cookie": "old=good"}).status_code == 503
    with TestClient(asgi_client(Down()).app) as asgi:
        assert asgi.get("/", headers={"Cookie": "old=good"}).status_code == 503


def test_legacy_must_be_readers() -> None:
    with pytest.raises(ConfigurationError, match="legacy"):
        sw_wsgi.SessionMiddleware(report, secret_key_base=SECRET, legacy=["not a reader"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="use_signer"):
        FlaskSessionRedis("redis://127.0.0.1:6379/0", use_signer=True)
    with pytest.raises(ConfigurationError, match="table"):
        DjangoDB("sqlite:///x.db", secret_key="k", table="x; DROP TABLE y")


def test_sessionware_cookie_values_are_never_handed_to_a_reader(tmp_path: Path) -> None:
    reader = Counting()
    reader.cookie_name = "session"
    client = wsgi_client(reader)
    get_json(client, "session=i1.expired-or-forged")
    assert reader.reads == 0


# -- Flask-Session's configuration names -------------------------------------------


def test_an_app_configured_for_flask_session_moves_with_one_call(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """``flask_session.Session(app)`` becomes ``Sessionware.from_flask_session(app)``; users stay in."""
    import datetime

    from sessionware.flask import Sessionware, current_session
    from sessionware.stores.redis import RedisStore

    prefix = unique_prefix() + "session:"
    config = {
        "SESSION_PERMANENT": True,
        "PERMANENT_SESSION_LIFETIME": datetime.timedelta(hours=2),
        "SESSION_USE_SIGNER": True,
        "SESSION_ID_LENGTH": 16,
    }
    value, _ = flask_session_cookie(redis_client, prefix, **config)

    app = flask.Flask(__name__)  # the same app, its configuration unchanged
    app.config.update(
        SECRET_KEY=FLASK_SECRET, SESSION_TYPE="redis", SESSION_REDIS=redis_client, SESSION_KEY_PREFIX=prefix
    )
    app.config.update(config)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        extension = Sessionware.from_flask_session(app, secret_key_base=SECRET)
    assert "SESSION_ID_LENGTH" in caplog.text  # named: no equivalent
    interface = extension.interface
    assert isinstance(interface.store, RedisStore)
    assert interface.options["persistent"] is True
    assert interface.options["expiry"].idle_timeout == 7200

    @app.get("/")
    def show() -> dict[str, Any]:
        return {"user": current_session().user_id, "cart": flask.session.get("cart")}

    client = app.test_client()
    client.set_cookie("session", value)
    reply = client.get("/")
    assert reply.get_json() == {"user": "42", "cart": [1, 2, 3]}
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("session=i1.")
    assert "Max-Age=" in cookie  # SESSION_PERMANENT: a cookie that outlives the browser
    assert client.get("/").get_json() == {"user": "42", "cart": [1, 2, 3]}


def test_from_flask_session_refuses_other_backends() -> None:
    from sessionware.flask import Sessionware

    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY=FLASK_SECRET, SESSION_TYPE="mongodb")
    with pytest.raises(ConfigurationError, match="SESSION_TYPE='redis' only"):
        Sessionware.from_flask_session(app, secret_key_base=SECRET)


# -- the old record goes only once the new session is saved ---------------------------


def failing_then_reporting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app whose /fail answers 500 after reading the session (a bug in the new deploy)."""
    if environ.get("PATH_INFO") == "/fail":
        sw_wsgi.get_session(environ).get("cart")
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"boom"]
    return report(environ, start_response)


class TestDeletedOnceSaved:
    def test_a_failing_first_response_keeps_the_old_session_for_the_next_request(
        self, redis_client: redis.Redis
    ) -> None:
        prefix = unique_prefix()
        value, _ = flask_session_cookie(redis_client, prefix)
        reader = FlaskSessionRedis(redis_client, key_prefix=prefix)
        app = sw_wsgi.SessionMiddleware(
            failing_then_reporting, secret_key_base=SECRET, store=MemoryStore(), legacy=reader
        )
        client = Client(app, use_cookies=False)
        failed = client.get("/fail", headers={"Cookie": f"session={value}"})
        assert failed.status_code == 500
        assert "Set-Cookie" not in failed.headers  # nothing saved...
        assert redis_client.exists(prefix + value) == 1  # ...so nothing deleted
        body, _ = get_json(client, f"session={value}")  # the next request still has the user
        assert body["user"] == "42"
        assert redis_client.exists(prefix + value) == 0  # saved now: the old record is gone

    @pytest.mark.usefixtures("django_ready")
    def test_asgi_and_flask_delete_after_the_save_too(self, redis_client: redis.Redis) -> None:
        from django.conf import settings

        database = f"sqlite:///{django_database()}"
        key = django_logged_in("db")
        body, _ = get_json(
            asgi_client(DjangoDB(database, secret_key=settings.SECRET_KEY)), f"sessionid={key}"
        )
        assert body["data"]["cart"] == ["apples"]
        assert not _django_row(key)

        prefix = unique_prefix()
        value, _ = flask_session_cookie(redis_client, prefix)
        app = flask_reading(redis_client, prefix)

        @app.get("/fail")
        def fail() -> tuple[str, int]:
            return str(flask.session.get("cart")), 500

        @app.get("/")
        def read() -> dict[str, Any]:
            return {"cart": flask.session.get("cart")}

        client = app.test_client(use_cookies=False)
        assert client.get("/fail", headers={"Cookie": f"session={value}"}).status_code == 500
        assert redis_client.exists(prefix + value) == 1
        assert client.get("/", headers={"Cookie": f"session={value}"}).json == {"cart": [1, 2, 3]}
        assert redis_client.exists(prefix + value) == 0

    def test_a_delete_that_fails_is_logged_and_the_new_session_stands(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Unforgetting(Counting):
            owner = "Unforgetting"

            def forget(self, value: str) -> None:
                raise ConnectionError("the old store went away")

        body, set_cookies = get_json(wsgi_client(Unforgetting()), "old=good")
        assert body == {"data": {"uid": 7, "from": "good"}, "user": 7}
        assert set_cookie_named(set_cookies, "session") is not None
        assert "Unforgetting could not delete the old session it read" in caplog.text
        assert "ConnectionError: the old store went away" in caplog.text


def _django_row(key: str) -> bool:
    with sqlite3.connect(django_database()) as connection:
        return (
            connection.execute("SELECT 1 FROM django_session WHERE session_key = ?", (key,)).fetchone()
            is not None
        )


class Remembering(Counting):
    """A reader whose records are deleted by ``forget``: what a store-backed reader does."""

    def __init__(self) -> None:
        super().__init__()
        self.forgotten: list[str] = []

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        return None if value in self.forgotten else super().read(value, now)

    def forget(self, value: str) -> None:
        self.forgotten.append(value)


def _logging_out_apps(reader: Any) -> dict[str, Callable[[str], tuple[int, list[str]]]]:
    """Per adapter: a function sending one request with a Cookie to /logout, or to /."""
    wsgi = Client(
        sw_wsgi.SessionMiddleware(report, secret_key_base=SECRET, store=MemoryStore(), legacy=reader),
        use_cookies=False,
    )

    async def asgi_logout(request: Request) -> JSONResponse:
        session = get_session(request)
        session.log_out()
        return JSONResponse({"data": dict(session), "user": session.user_id})

    starlette = Starlette(routes=[Route("/", asgi_report), Route("/logout", asgi_logout)])
    asgi = TestClient(
        SessionMiddleware(starlette, secret_key_base=SECRET, store=MemoryStore(), legacy=reader)
    )
    from sessionware.flask import Sessionware, current_session

    app = flask.Flask(__name__)
    Sessionware(app, secret_key_base=SECRET, store=MemoryStore(), legacy=reader)

    @app.get("/")
    def flask_read() -> dict[str, Any]:
        return {"user": current_session().user_id}

    @app.get("/logout")
    def flask_logout() -> str:
        current_session().log_out()
        return "bye"

    flask_client = app.test_client(use_cookies=False)

    def via_wsgi(path: str) -> tuple[int, list[str]]:
        response = wsgi.get(path, headers={"Cookie": "old=good"})
        return response.status_code, response.headers.getlist("Set-Cookie")

    def via_asgi(path: str) -> tuple[int, list[str]]:
        response = asgi.get(path, headers={"Cookie": "old=good"})
        asgi.cookies.clear()
        return response.status_code, response.headers.get_list("set-cookie")

    def via_flask(path: str) -> tuple[int, list[str]]:
        response = flask_client.get(path, headers={"Cookie": "old=good"})
        return response.status_code, response.headers.getlist("Set-Cookie")

    return {"wsgi": via_wsgi, "asgi": via_asgi, "flask": via_flask}


@pytest.mark.parametrize("adapter", ["wsgi", "asgi", "flask"])
def test_logging_out_on_the_first_request_after_the_switch_ends_the_old_session_too(adapter: str) -> None:
    reader = Remembering()
    send = _logging_out_apps(reader)[adapter]
    status, set_cookies = send("/logout")
    assert status == 200
    assert reader.forgotten == ["good"]  # the old record is deleted...
    assert "old=; Max-Age=0; Path=/" in set_cookies  # ...and the old cookie expired
    assert reader.read("good", 0) is None
    status, _ = send("/")
    assert status == 200
    assert reader.reads == 1  # the old session never comes back


@pytest.mark.parametrize("adapter", ["wsgi", "asgi", "flask"])
def test_a_legacy_session_is_forgotten_once_saved_not_before(adapter: str) -> None:
    reader = Remembering()
    send = _logging_out_apps(reader)[adapter]
    status, set_cookies = send("/")
    assert status == 200
    assert reader.forgotten == ["good"]
    assert "old=; Max-Age=0; Path=/" in set_cookies
