"""sessionware.testing's helpers for app tests, and the pytest plugin's fixtures.

init_test_session and read_session are driven through every kind of test client
(Starlette's TestClient, httpx.AsyncClient over ASGI, httpx.Client over WSGI,
Flask's test client) against every store, and checked against what the app itself
sees on its next request.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
import werkzeug.test
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import (
    CookieStore,
    MemoryStore,
    SerializationError,
    SessionError,
    SessionMiddleware,
    SQLiteStore,
    get_session,
    user_sessions,
)
from sessionware import wsgi as sw_wsgi
from sessionware.errors import ConfigurationError
from sessionware.flask import Sessionware, current_session
from sessionware.flask import user_sessions as flask_user_sessions
from sessionware.testing import (
    FakeClock,
    SessionSnapshot,
    init_test_session,
    make_session_cookie,
    read_session,
)
from sessionware.typing import ASGIApp, Receive, Scope, Send

from .conftest import SECRET, call, make_server_store, make_store
from .doubles import AsyncOnly

pytest_plugins = ["pytester"]

STORES = ["encrypted", "signed", "memory", "sqlite", "redis", "postgres", "cookie-revocation"]
REGISTRY_STORES = ["memory", "sqlite", "redis", "postgres", "cookie-revocation"]
CLIENTS = ["testclient", "httpx-asgi-async", "httpx-wsgi", "flask"]

# -- one app, three frameworks ---------------------------------------------------------
# Every app answers GET /whoami, /incr, /logout, /sessions and /revoke-others with the
# same JSON, so one script drives them all.


def _whoami(session: Any) -> dict[str, Any]:
    return {"user": session.user_id, "level": session.auth_level, "data": dict(session)}


def _listing(infos: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"current": info.current, "agent": info.user_agent} for info in infos]


async def _st_whoami(request: Request) -> Response:
    return JSONResponse(_whoami(get_session(request)))


async def _st_incr(request: Request) -> Response:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse({"n": request.session["n"]})


async def _st_logout(request: Request) -> Response:
    get_session(request).log_out()
    return JSONResponse({})


async def _st_sessions(request: Request) -> Response:
    session = get_session(request)
    assert session.user_id is not None
    return JSONResponse(_listing(await user_sessions(request).list(session.user_id, current=session)))


async def _st_revoke_others(request: Request) -> Response:
    session = get_session(request)
    assert session.user_id is not None
    return JSONResponse({"revoked": await user_sessions(request).revoke_all(session.user_id, keep=session)})


async def _st_sudo(request: Request) -> Response:
    get_session(request).require_recent_auth(600, level="mfa")
    return PlainTextResponse("sudo")


ST_ROUTES = [
    Route("/whoami", _st_whoami),
    Route("/incr", _st_incr),
    Route("/logout", _st_logout),
    Route("/sessions", _st_sessions),
    Route("/revoke-others", _st_revoke_others),
    Route("/sudo", _st_sudo),
]


def starlette_app(store: Any, clock: FakeClock, **options: Any) -> Starlette:
    app = Starlette(routes=ST_ROUTES)
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=store, clock=clock, **options)
    return app


def _wsgi_inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = sw_wsgi.get_session(environ)
    path = environ["PATH_INFO"]
    body: Any = {}
    if path == "/whoami":
        body = _whoami(session)
    elif path == "/incr":
        session["n"] = session.get("n", 0) + 1
        body = {"n": session["n"]}
    elif path == "/logout":
        session.log_out()
    elif path == "/sessions":
        assert session.user_id is not None
        body = _listing(sw_wsgi.user_sessions(environ).list(session.user_id, current=session))
    elif path == "/revoke-others":
        assert session.user_id is not None
        body = {"revoked": sw_wsgi.user_sessions(environ).revoke_all(session.user_id, keep=session)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def wsgi_app(store: Any, clock: FakeClock, **options: Any) -> sw_wsgi.SessionMiddleware:
    return sw_wsgi.SessionMiddleware(_wsgi_inner, secret_key_base=SECRET, store=store, clock=clock, **options)


def flask_app(store: Any, clock: FakeClock, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    Sessionware(app, secret_key_base=SECRET, store=store, clock=clock, **options)

    @app.get("/whoami")
    def whoami() -> Any:
        return _whoami(current_session())

    @app.get("/incr")
    def incr() -> Any:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return {"n": flask.session["n"]}

    @app.get("/logout")
    def logout() -> Any:
        current_session().log_out()
        return {}

    @app.get("/sessions")
    def sessions() -> Any:
        session = current_session()
        assert session.user_id is not None
        return _listing(flask_user_sessions().list(session.user_id, current=session))

    @app.get("/revoke-others")
    def revoke_others() -> Any:
        session = current_session()
        assert session.user_id is not None
        return {"revoked": flask_user_sessions().revoke_all(session.user_id, keep=session)}

    return app


# -- clients ------------------------------------------------------------------------------


class Driver:
    """A test client of one kind, with a synchronous face for the scripts below."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.client = client
        self.loop = loop

    def get(self, path: str) -> Any:
        if self.loop is not None:
            response = self.loop.run_until_complete(self.client.get(path))
        else:
            response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return json.loads(response.get_data() if hasattr(response, "get_data") else response.content)

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.client.aclose())
        elif hasattr(self.client, "close"):
            self.client.close()


def make_store_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    if kind in ("encrypted", "signed"):
        return make_store(kind, tmp_path, clock)
    if kind == "cookie-revocation":
        return CookieStore(revocation=SQLiteStore(tmp_path / "revocation.db", clock=clock))
    return make_server_store(kind, request, tmp_path, clock)


@pytest.fixture
def drivers(clock: FakeClock) -> Iterator[Callable[[str, Any], Callable[[], Driver]]]:
    """``drivers(kind, store)`` builds the app of that kind and returns a factory of
    clients on it (several clients share the app, as several browsers would)."""
    made: list[Driver] = []
    loop = asyncio.new_event_loop()

    def build(kind: str, store: Any, **options: Any) -> Callable[[], Driver]:
        if kind in ("testclient", "httpx-asgi-async"):
            asgi = starlette_app(store, clock, **options)
        elif kind == "httpx-wsgi":
            wsgi = wsgi_app(store, clock, **options)
        elif kind == "flask":
            app = flask_app(store, clock, **options)
        else:
            raise AssertionError(kind)

        def new() -> Driver:
            if kind == "testclient":
                driver = Driver(TestClient(asgi))
            elif kind == "httpx-asgi-async":
                asgi_transport = httpx.ASGITransport(app=asgi)
                driver = Driver(
                    httpx.AsyncClient(transport=asgi_transport, base_url="http://testserver"), loop
                )
            elif kind == "httpx-wsgi":
                wsgi_transport = httpx.WSGITransport(app=wsgi)
                driver = Driver(httpx.Client(transport=wsgi_transport, base_url="http://testserver"))
            else:
                driver = Driver(app.test_client())
            made.append(driver)
            return driver

        return new

    yield build
    for driver in made:
        driver.close()
    loop.run_until_complete(loop.shutdown_asyncgens())  # closes per-loop store clients
    loop.close()


# -- the round trip, for every client and every store ---------------------------------------


@pytest.mark.parametrize("store_kind", STORES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_a_test_session_is_the_session_the_app_sees_and_read_session_follows_it(
    client_kind: str,
    store_kind: str,
    drivers: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    browser = drivers(client_kind, make_store_of(store_kind, request, tmp_path, clock))()

    assert init_test_session(browser.client, {"cart": [1]}, user_id="42") is browser.client
    assert browser.get("/whoami") == {"user": "42", "level": None, "data": {"cart": [1]}}
    snapshot = read_session(browser.client)
    assert snapshot == {"cart": [1]}
    assert snapshot is not None
    assert snapshot.user_id == "42"

    assert browser.get("/incr") == {"n": 1}
    assert read_session(browser.client) == {"cart": [1], "n": 1}

    browser.get("/logout")
    assert read_session(browser.client) is None
    assert browser.get("/whoami") == {"user": None, "level": None, "data": {}}


@pytest.mark.parametrize("store_kind", REGISTRY_STORES)
@pytest.mark.parametrize("client_kind", CLIENTS)
def test_a_logged_in_test_session_is_a_real_log_in_listed_and_revoked_with_the_users_sessions(
    client_kind: str,
    store_kind: str,
    drivers: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    new_client = drivers(client_kind, make_store_of(store_kind, request, tmp_path, clock))
    phone, laptop, stranger = new_client(), new_client(), new_client()
    init_test_session(phone.client, {"device": "phone"}, user_id="42")
    init_test_session(laptop.client, {"device": "laptop"}, user_id="42")
    init_test_session(stranger.client, user_id="7")

    listing = laptop.get("/sessions")
    assert sorted(entry["current"] for entry in listing) == [False, True]
    assert all(entry["agent"] for entry in listing), "the client's user agent is recorded"

    assert laptop.get("/revoke-others") == {"revoked": 1}
    assert read_session(phone.client) is None
    assert phone.get("/whoami")["user"] is None
    assert read_session(laptop.client) == {"device": "laptop"}
    assert read_session(stranger.client) == {}  # other users are untouched
    assert stranger.get("/whoami")["user"] == "7"


# -- what the session holds -----------------------------------------------------------------


def test_the_snapshot_carries_the_log_in_and_the_times_at_the_apps_clock(clock: FakeClock) -> None:
    client = TestClient(starlette_app(MemoryStore(clock=clock), clock))
    clock.advance(hours=5)
    start = int(clock())
    init_test_session(client, {"a": 1}, user_id=42, auth_level="mfa")

    snapshot = read_session(client)
    assert isinstance(snapshot, SessionSnapshot)
    assert (snapshot.user_id, snapshot.auth_level) == (42, "mfa")
    assert (snapshot.created_at, snapshot.auth_at, snapshot.last_active) == (start, start, start)
    assert snapshot.expires_at == start + 30 * 60  # the AAL2 idle timeout comes first
    assert client.get("/sudo").text == "sudo"  # the app sees the level and a recent log-in
    assert "user_id=42" in repr(snapshot)


def test_an_anonymous_test_session_has_no_user(clock: FakeClock) -> None:
    client = init_test_session(TestClient(starlette_app(CookieStore(), clock)), {"theme": "dark"})
    snapshot = read_session(client)
    assert snapshot == {"theme": "dark"}
    assert snapshot is not None
    assert (snapshot.user_id, snapshot.auth_level, snapshot.auth_at) == (None, None, None)
    assert client.get("/whoami").json()["user"] is None


def test_a_level_without_a_user_is_refused(clock: FakeClock) -> None:
    client = TestClient(starlette_app(CookieStore(), clock))
    with pytest.raises(SessionError, match="auth_level but no user_id"):
        init_test_session(client, {"a": 1}, auth_level="mfa")


def test_data_json_cannot_hold_is_refused_naming_the_key(clock: FakeClock) -> None:
    client = TestClient(starlette_app(MemoryStore(clock=clock), clock))
    with pytest.raises(SerializationError, match="when"):
        init_test_session(client, {"when": datetime.date(2026, 1, 1)})


@pytest.mark.parametrize("client_kind", CLIENTS)
def test_a_test_session_replaces_the_clients_session_cookie(client_kind: str, drivers: Any) -> None:
    """Two cookies of one name would make the app refuse both: the old one must go."""
    browser = drivers(client_kind, MemoryStore())()
    browser.get("/incr")  # a session cookie set by a response
    init_test_session(browser.client, {"fresh": True})
    assert browser.get("/whoami")["data"] == {"fresh": True}
    browser.get("/incr")  # and the response's cookie replaces the test one in turn
    assert browser.get("/whoami")["data"] == {"fresh": True, "n": 1}

    init_test_session(browser.client)  # nothing: the client is left without a session
    assert read_session(browser.client) is None
    assert browser.get("/whoami")["data"] == {}


def test_a_cookie_of_the_same_name_for_any_host_is_replaced_too(clock: FakeClock) -> None:
    client = TestClient(starlette_app(CookieStore(), clock))
    client.cookies.set("session", "stale")  # a cookie for every host, beside the one a response sets
    init_test_session(client, {"fresh": True})
    assert client.get("/whoami").json()["data"] == {"fresh": True}


def test_a_test_log_in_counts_against_the_session_limit(clock: FakeClock) -> None:
    app = starlette_app(MemoryStore(clock=clock), clock, max_sessions_per_user=1)
    first = init_test_session(TestClient(app), user_id="42")
    second = init_test_session(TestClient(app), user_id="42")
    assert read_session(first) is None  # evicted, as a second real log-in would do
    assert read_session(second) == {}


# -- time --------------------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["encrypted", "memory", "sqlite", "redis", "postgres"])
def test_a_test_session_expires_when_the_fake_clock_passes_the_idle_timeout(
    store_kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    client = TestClient(starlette_app(make_store_of(store_kind, request, tmp_path, clock), clock))
    init_test_session(client, {"cart": [1]}, user_id="42")

    clock.advance(minutes=29)
    assert read_session(client) == {"cart": [1]}
    clock.advance(minutes=2)  # 31 minutes without activity: past AAL2's 30
    assert read_session(client) is None
    assert client.get("/whoami").json() == {"user": None, "level": None, "data": {}}


def test_reading_the_session_is_not_activity(clock: FakeClock) -> None:
    """read_session writes nothing, so it cannot keep a session alive."""
    client = init_test_session(TestClient(starlette_app(MemoryStore(clock=clock), clock)), {"a": 1})
    clock.advance(minutes=20)
    assert read_session(client) == {"a": 1}
    clock.advance(minutes=11)
    assert read_session(client) is None


def test_reading_an_expired_session_deletes_nothing(clock: FakeClock) -> None:
    store = MemoryStore()  # keeps its own (real) time, so only sessionware sees the expiry
    client = init_test_session(TestClient(starlette_app(store, clock)), user_id="42")
    assert len(store._records) == 1
    clock.advance(minutes=31)
    assert read_session(client) is None
    assert len(store._records) == 1  # read_session only looked
    client.get("/whoami")
    assert len(store._records) == 0  # the app's own request deletes the expired record


def test_a_request_is_activity_and_read_session_sees_it(clock: FakeClock) -> None:
    client = init_test_session(TestClient(starlette_app(MemoryStore(clock=clock), clock)), {"a": 1})
    clock.advance(minutes=20)
    client.get("/whoami")  # a read-only request records activity (touch interval passed)
    snapshot = read_session(client)
    assert snapshot is not None
    assert snapshot.last_active == int(clock())
    clock.advance(minutes=20)
    assert read_session(client) == {"a": 1}


def test_the_fake_clock_moves_by_any_unit_and_says_where_it_is() -> None:
    clock = FakeClock(1000)
    assert clock.advance(5) == 1005
    assert clock.advance(minutes=1, hours=1, days=1) == 1005 + 60 + 3600 + 86400
    assert (
        clock.advance(datetime.timedelta(seconds=-5))
        == clock()
        == clock.time()
        == 1005 + 60 + 3600 + 86400 - 5
    )
    assert repr(clock) == f"FakeClock({clock.now})"


# -- other clients, other apps -------------------------------------------------------------


def test_fastapi_apps_work_the_same(clock: FakeClock) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=MemoryStore(clock=clock), clock=clock)

    @app.get("/cart")
    def cart(request: Request) -> Any:
        return request.session.get("cart")

    client = init_test_session(TestClient(app), {"cart": [1, 2]})
    assert client.get("/cart").json() == [1, 2]
    assert read_session(client) == {"cart": [1, 2]}


def test_a_plain_werkzeug_client_over_a_wsgi_app_works(clock: FakeClock) -> None:
    client = werkzeug.test.Client(wsgi_app(MemoryStore(clock=clock), clock))
    init_test_session(client, {"a": 1}, user_id=5)
    assert json.loads(client.get("/whoami").get_data())["user"] == 5
    assert read_session(client) == {"a": 1}


def test_a_flask_app_with_a_server_name_and_https_gets_its_cookie_where_it_looks(clock: FakeClock) -> None:
    app = flask_app(MemoryStore(clock=clock), clock)
    app.config.update(SERVER_NAME="example.test:8080", PREFERRED_URL_SCHEME="https")
    client = init_test_session(app.test_client(), {"a": 1})
    assert json.loads(client.get("/whoami").get_data())["data"] == {"a": 1}
    assert read_session(client) == {"a": 1}


def test_a_secure_cookie_goes_to_https_clients_only(clock: FakeClock) -> None:
    """Like a browser, a client keeps a Secure cookie from an http response but never sends it back."""
    app = starlette_app(MemoryStore(clock=clock), clock, cookie_name="__Host-session")
    secure = init_test_session(TestClient(app, base_url="https://testserver"), {"a": 1})
    assert secure.get("/whoami").json()["data"] == {"a": 1}
    assert read_session(secure) == {"a": 1}
    plain = init_test_session(TestClient(app), {"a": 1})
    assert plain.get("/whoami").json()["data"] == {}
    assert read_session(plain) is None


def test_the_default_cookie_name_follows_the_clients_scheme(clock: FakeClock) -> None:
    """``__Host-session`` for an https client, ``session`` for an http one (SW-15)."""
    app = starlette_app(MemoryStore(clock=clock), clock)
    secure = init_test_session(TestClient(app, base_url="https://testserver"), {"a": 1})
    assert [cookie.name for cookie in secure.cookies.jar] == ["__Host-session"]
    init_test_session(secure, {"a": 2})  # replaces, never two of one name
    assert [cookie.name for cookie in secure.cookies.jar] == ["__Host-session"]
    assert secure.get("/whoami").json()["data"] == {"a": 2}
    assert read_session(secure) == {"a": 2}
    response = secure.get("/whoami")  # sets no cookie: the session is the one it carried
    assert read_session(response, app=app) == {"a": 2}
    plain = init_test_session(TestClient(app), {"a": 1})
    assert [cookie.name for cookie in plain.cookies.jar] == ["session"]
    assert read_session(plain) == {"a": 1}
    header = make_session_cookie(app, {"c": 1}, https=True)
    assert header.startswith("__Host-session=")
    assert read_session(header, app=app) == {"c": 1}


def test_it_works_inside_a_running_event_loop(tmp_path: Path, clock: FakeClock) -> None:
    app = starlette_app(SQLiteStore(tmp_path / "s.db", clock=clock), clock)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            init_test_session(client, {"a": 1}, user_id="u")
            assert (await client.get("/whoami")).json()["user"] == "u"
            await client.get("/logout")
            assert read_session(client) is None

    asyncio.run(scenario())


def AsyncOnlyStore(clock: FakeClock) -> AsyncOnly:
    """A store with async methods only, over a MemoryStore."""
    return AsyncOnly(MemoryStore(clock=clock))


def test_an_async_only_store_works_from_sync_tests_and_says_why_not_from_async_ones(clock: FakeClock) -> None:
    app = starlette_app(AsyncOnlyStore(clock), clock)
    client = init_test_session(TestClient(app), {"a": 1})
    assert client.get("/whoami").json()["data"] == {"a": 1}
    assert read_session(client) == {"a": 1}

    async def inside_a_loop() -> None:
        init_test_session(TestClient(app), {"a": 1})

    with pytest.raises(SessionError, match="running event loop: it has only async methods"):
        asyncio.run(inside_a_loop())


# -- raw cookies and responses --------------------------------------------------------


def test_make_session_cookie_gives_a_cookie_header_the_app_accepts(clock: FakeClock) -> None:
    app = starlette_app(MemoryStore(clock=clock), clock)
    cookie = make_session_cookie(app, {"a": 1}, user_id="42", user_agent="curl/8")
    assert cookie.startswith("session=")
    assert call(app, "/whoami", cookie=cookie).json() == {"user": "42", "level": None, "data": {"a": 1}}
    assert read_session(cookie, app=app) == {"a": 1}
    listed = call(app, "/sessions", cookie=cookie).json()
    assert listed == [{"current": True, "agent": "curl/8"}]

    with pytest.raises(SessionError, match="empty anonymous session has no cookie"):
        make_session_cookie(app)


def test_read_session_of_a_response_is_the_session_it_left(clock: FakeClock) -> None:
    app = starlette_app(MemoryStore(clock=clock), clock)
    client = init_test_session(TestClient(app), {"a": 1}, user_id="42")

    written = client.get("/incr")  # sets no cookie (a server-side write keeps the ID) ...
    assert read_session(written, app=app) == {"a": 1, "n": 1}  # ... so its request's cookie counts
    assert read_session(written, app=client) == {"a": 1, "n": 1}  # the client stands for its app
    logged_out = client.get("/logout")
    assert read_session(logged_out, app=app) is None  # the cookie it sets is a deletion

    fresh = TestClient(app).get("/incr")  # a new session, in the cookie the response sets
    assert read_session(fresh, app=app) == {"n": 1}

    flask_client = flask_app(CookieStore(), clock).test_client()
    assert read_session(flask_client.get("/incr"), app=flask_client) == {"n": 1}
    assert read_session(flask_client.get("/whoami"), app=flask_client) == {"n": 1}  # from the request


def test_the_app_may_be_given_as_its_outermost_middleware(clock: FakeClock) -> None:
    app = SessionMiddleware(Starlette(routes=ST_ROUTES), secret_key_base=SECRET, clock=clock)
    client = TestClient(app)
    assert read_session(client.get("/incr"), app=app) == {"n": 1}
    init_test_session(client, {"a": 1}, app=app)
    assert client.get("/whoami").json()["data"] == {"a": 1}


def test_read_session_of_a_response_asks_for_the_app(clock: FakeClock) -> None:
    response = TestClient(starlette_app(CookieStore(), clock)).get("/incr")
    with pytest.raises(ConfigurationError, match=r"pass app=the app .* read_session\(client\) finds"):
        read_session(response)


# -- finding the middleware, and saying so when it cannot ----------------------------------------


def _opaque(app: ASGIApp) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    return wrapper


def test_an_app_that_hides_its_middleware_gets_an_error_naming_the_fix(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    hidden = _opaque(
        SessionMiddleware(_opaque(starlette_app(store, clock)), secret_key_base=SECRET, store=store)
    )
    client = TestClient(_opaque(hidden))
    with pytest.raises(
        ConfigurationError, match=r"found no sessionware SessionMiddleware .* pass middleware="
    ):
        init_test_session(client, {"a": 1})
    with pytest.raises(ConfigurationError, match="middleware="):
        read_session(client)


def test_middleware_built_for_the_test_with_the_same_secret_and_store_is_enough(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    client = TestClient(_opaque(starlette_app(store, clock)))
    twin = SessionMiddleware(
        _opaque(starlette_app(store, clock)), secret_key_base=SECRET, store=store, clock=clock
    )
    init_test_session(client, {"a": 1}, user_id="42", middleware=twin)
    assert client.get("/whoami").json() == {"user": "42", "level": None, "data": {"a": 1}}
    assert read_session(client, middleware=twin) == {"a": 1}


def test_starlettes_own_session_middleware_is_not_mistaken_for_sessionware(clock: FakeClock) -> None:
    app = Starlette(
        routes=ST_ROUTES, middleware=[Middleware(StarletteSessionMiddleware, secret_key="x" * 32)]
    )
    with pytest.raises(ConfigurationError, match="found no sessionware SessionMiddleware"):
        init_test_session(TestClient(app), {"a": 1})


def test_a_wrong_middleware_argument_is_named(clock: FakeClock) -> None:
    client = TestClient(starlette_app(CookieStore(), clock))
    with pytest.raises(ConfigurationError, match="expects middleware to be a sessionware SessionMiddleware"):
        init_test_session(client, {"a": 1}, middleware=StarletteSessionMiddleware)


def test_a_client_that_hides_its_app_needs_app(clock: FakeClock) -> None:
    app = starlette_app(CookieStore(), clock)
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200)), base_url="http://t"
    )
    with pytest.raises(ConfigurationError, match=r"cannot see the app behind .* pass app="):
        init_test_session(client, {"a": 1})
    init_test_session(client, {"a": 1}, app=app)
    assert read_session(client, app=app) == {"a": 1}


def test_a_client_without_a_base_url_is_told_to_set_one(clock: FakeClock) -> None:
    client = httpx.Client(transport=httpx.WSGITransport(app=wsgi_app(CookieStore(), clock)))
    with pytest.raises(ConfigurationError, match="base_url='http://testserver'"):
        init_test_session(client, {"a": 1})


def test_something_that_is_not_a_test_client_is_named(clock: FakeClock) -> None:
    app = starlette_app(CookieStore(), clock)
    with pytest.raises(
        ConfigurationError, match=r"expects a test client .* got <starlette.applications.Starlette"
    ):
        init_test_session(app, {"a": 1})


# -- the pytest plugin --------------------------------------------------------------------------------

PLUGIN_USER_TESTS = """
    import pytest
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from sessionware import SessionMiddleware
    from sessionware.testing import FakeClock, init_test_session, read_session

    SECRETS = []


    async def cart(request):
        return JSONResponse(request.session.get("cart"))


    def make_app(**options):
        app = Starlette(routes=[Route("/cart", cart)])
        app.add_middleware(SessionMiddleware, **options)
        return app


    def test_a_session_expires_on_the_fake_clock(session_clock, session_secret, session_store):
        assert isinstance(session_clock, FakeClock)
        app = make_app(secret_key_base=session_secret, store=session_store, clock=session_clock)
        client = init_test_session(TestClient(app), {"cart": [1]}, user_id=42)
        assert client.get("/cart").json() == [1]
        assert read_session(client).user_id == 42
        session_clock.advance(minutes=31)
        assert read_session(client) is None
        assert client.get("/cart").json() is None


    @pytest.mark.parametrize("n", [1, 2])
    def test_every_test_gets_a_fresh_secret(session_secret, n):
        SECRETS.append(session_secret)
        assert len(session_secret) >= 64
        assert len(set(SECRETS)) == len(SECRETS) == n


    def test_the_store_keeps_time_by_the_clock(session_clock, session_store):
        session_store.create("g/k", b"x", {}, 60, None)
        session_clock.advance(61)
        assert session_store.load("g/k") is None
"""


def test_the_plugin_fixtures_work_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_app=textwrap.dedent(PLUGIN_USER_TESTS))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_the_fixtures_come_from_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_app=textwrap.dedent(PLUGIN_USER_TESTS))
    result = pytester.runpytest("-p", "no:sessionware", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*fixture 'session_clock' not found*"])


def test_loading_the_plugin_imports_no_framework() -> None:
    code = (
        "import sys, sessionware.pytest_plugin;"
        "print([m for m in ('flask', 'werkzeug', 'starlette', 'fastapi', 'httpx', 'httpx2', 'redis', "
        "'psycopg', 'sessionware.testing', 'sessionware.flask') if m in sys.modules])"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_the_plugin_works_where_flask_and_starlette_are_not_installed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = pytester.mkdir("not_installed")
    for name in ("flask", "starlette", "werkzeug", "fastapi"):
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocked))
    pytester.makepyfile(
        test_plain=textwrap.dedent(
            """
            import pytest
            from sessionware import SessionMiddleware


            def test_fixtures(session_clock, session_secret, session_store):
                with pytest.raises(ImportError):
                    import starlette  # noqa: F401
                with pytest.raises(ImportError):
                    import flask  # noqa: F401
                SessionMiddleware(
                    None, secret_key_base=session_secret, store=session_store, clock=session_clock
                )
                assert session_clock.advance(1) == session_clock()
            """
        )
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
