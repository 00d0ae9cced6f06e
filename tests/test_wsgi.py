"""The WSGI adapter: the same lifecycle as the ASGI one, proven by running the same request
scripts through both and comparing what comes back."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from sessionware import CookieStore, MemoryStore, SQLiteStore, csrf_token
from sessionware import wsgi as sw_wsgi
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import SECRET, Reply, build_app, call
from .doubles import Recording

# -- a WSGI twin of the test app in conftest ---------------------------------------------


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def wsgi_test_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = sw_wsgi.get_session(environ)
    parts = [part for part in environ["PATH_INFO"].split("/") if part]
    status, body = "200 OK", b""
    headers = [("Content-Type", "text/plain")]
    match parts:
        case ["read", key]:
            body = dump({"value": session.get(key)})
        case ["write", key, value]:
            session[key] = _value(value)
            body = b"written"
        case ["incr"]:
            session["n"] = session.get("n", 0) + 1
            body = dump({"n": session["n"]})
        case ["cart", item]:
            if "cart" not in session:
                session["cart"] = []
            else:
                session["cart"].append(item)
            body = dump({"cart": session["cart"]})
        case ["renew"]:
            session.renew()
            body = b"renewed"
        case ["login", user]:
            session.renew()
            session["user"] = user
            body = b"logged in"
        case ["auth", user]:
            session.log_in(user)
            body = b"logged in"
        case ["drop"]:
            session.drop()
            body = b"dropped"
        case ["clear"]:
            session.clear()
            body = b"cleared"
        case ["whoami"]:
            body = dump({"user": session.user_id, "auth_at": session.auth_at, "data": dict(session)})
        case ["ignore-write"]:
            session["ignored"] = True
            session.ignore()
            body = b"ignored"
        case ["fail"]:
            session["failed"] = True
            status, body = "500 Internal Server Error", b"boom"
        case ["cached"]:
            session["x"] = 1
            headers += [("Cache-Control", "public, max-age=3600"), ("Vary", "Accept")]
            body = b"ok"
        case ["sessions", user]:
            listing = sw_wsgi.user_sessions(environ).list(user, current=session)
            body = dump([info.user_agent for info in listing])
        case ["revoke-all", user]:
            body = dump({"revoked": sw_wsgi.user_sessions(environ).revoke_all(user)})
        case ["token"]:
            body = dump({"token": csrf_token(session)})
        case ["transfer"]:
            body = b"transferred:" + environ["wsgi.input"].read()
        case []:
            body = b"nothing"
        case _:
            status = "404 Not Found"
    start_response(status, headers)
    return [body]


def wsgi_app(store: Any, clock: FakeClock, *, csrf: bool = False, **options: Any) -> Any:
    inner: Any = sw_wsgi.CSRFMiddleware(wsgi_test_app) if csrf else wsgi_test_app
    return sw_wsgi.SessionMiddleware(inner, secret_key_base=SECRET, store=store, clock=clock, **options)


def wcall(
    app: Any,
    path: str = "/",
    *,
    cookie: str | None = None,
    method: str = "GET",
    scheme: str = "http",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Reply:
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443" if scheme == "https" else "80",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    for name, value in headers or []:
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    reply = Reply(status=0)

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        reply.status = int(status.split()[0])
        reply.headers = [(name.lower(), value) for name, value in response_headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        reply.body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return reply


# -- the same scripts through both adapters -------------------------------------------------

SCRIPTS: dict[str, list[str]] = {
    "untouched": ["/"],
    "write then read": ["/write/color/blue", "/read/color"],
    "count": ["/incr", "/incr", "/incr"],
    "nested edits": ["/cart/start", "/cart/apple", "/cart/pear", "/read/cart"],
    "same value again": ["/write/a/1", "/write/a/1"],
    "5xx saves nothing": ["/write/a/1", "/fail", "/read/failed"],
    "ignore": ["/write/a/1", "/ignore-write", "/read/ignored"],
    "renew": ["/write/a/1", "/renew", "/read/a"],
    "drop": ["/write/a/1", "/drop", "/read/a"],
    "cache headers": ["/cached"],
    "log in": ["/auth/alice", "/read/user"],
    "clear logs out": ["/auth/alice", "/write/a/1", "/clear", "/whoami", "/write/b/2", "/whoami"],
}


def shape(reply: Reply) -> tuple[Any, ...]:
    """What must match between adapters: everything but random cookie values."""
    set_cookie = reply.set_cookie
    attributes = None if set_cookie is None else tuple(sorted(set_cookie.split(";")[1:]))
    return (
        reply.status,
        reply.body if b"Service" not in reply.body else b"503",
        reply.header("vary"),
        reply.header("cache-control"),
        attributes,
    )


def run_script(send: Callable[..., Reply], paths: list[str], scheme: str) -> list[tuple[Any, ...]]:
    cookie = None
    shapes = []
    for path in paths:
        reply = send(path, cookie=cookie, scheme=scheme)
        shapes.append(shape(reply))
        if reply.set_cookie is not None:
            pair = reply.set_cookie.split(";", 1)[0]
            cookie = None if pair.endswith("=") else pair
    return shapes


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_wsgi_adapter_answers_every_script_exactly_as_the_asgi_one(
    script: str, scheme: str, store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from .conftest import make_server_store, make_store

    def fresh(kind_dir: str) -> Any:
        clock = FakeClock()
        path = tmp_path / kind_dir
        path.mkdir()
        if store_kind in ("encrypted", "signed"):
            return make_store(store_kind, path, clock), clock
        return make_server_store(store_kind, request, path, clock), clock

    asgi_store, asgi_clock = fresh("asgi")
    wsgi_store, wsgi_clock = fresh("wsgi")
    asgi: ASGIApp = build_app(asgi_store, asgi_clock)
    wsgi = wsgi_app(wsgi_store, wsgi_clock)
    through_asgi = run_script(lambda path, **o: call(asgi, path, **o), SCRIPTS[script], scheme)
    through_wsgi = run_script(lambda path, **o: wcall(wsgi, path, **o), SCRIPTS[script], scheme)
    assert through_wsgi == through_asgi


@pytest.fixture(params=["encrypted", "memory", "sqlite", "redis", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- WSGI-specific behaviour ----------------------------------------------------------------


Flaky = Recording  # a MemoryStore whose connection can be cut


def test_a_store_failure_answers_503_on_load_and_on_save_and_recovers() -> None:
    store = Flaky()
    app = wsgi_app(store, FakeClock())
    cookie = wcall(app, "/write/a/1").cookie()
    store.down = True
    assert wcall(app, "/read/a", cookie=cookie).status == 503
    new = wcall(app, "/write/a/2")
    assert (new.status, new.set_cookie, b"written" in new.body) == (503, None, False)
    store.down = False
    assert wcall(app, "/read/a", cookie=cookie).json() == {"value": 1}


def test_a_store_failure_the_app_turns_into_a_500_is_still_the_503() -> None:
    """A framework's error page (a 500) for a failed ``user_sessions()`` call becomes the 503."""
    store = Flaky()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            if environ["PATH_INFO"] == "/login":
                sw_wsgi.get_session(environ).log_in("alice")
                count = 0
            else:
                count = len(sw_wsgi.user_sessions(environ).list("alice"))
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"Internal Server Error"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(count).encode()]

    wrapped = sw_wsgi.SessionMiddleware(app, secret_key_base=SECRET, store=store)
    cookie = wcall(wrapped, "/login").cookie()
    assert wcall(wrapped, "/sessions", cookie=cookie).json() == 1
    real = store.inner.user_sessions

    def unreachable(user: str) -> Any:
        raise ConnectionError("gone")

    store.inner.user_sessions = unreachable
    reply = wcall(wrapped, "/sessions", cookie=cookie)
    assert (reply.status, reply.set_cookie) == (503, None)
    assert b"sessions cannot be loaded or saved" in reply.body
    store.inner.user_sessions = real
    assert wcall(wrapped, "/sessions", cookie=cookie).json() == 1


def test_a_generator_app_that_starts_the_response_lazily_is_replaced_on_failure() -> None:
    store = Flaky()

    def lazy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sw_wsgi.get_session(environ)["k"] = "v"
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        yield b"second"

    app = sw_wsgi.SessionMiddleware(lazy, secret_key_base=SECRET, store=store)
    assert wcall(app).body == b"firstsecond"
    store.down = True
    reply = wcall(app)
    assert reply.status == 503
    assert b"first" not in reply.body


def test_registry_and_revocation_work_through_wsgi(tmp_path: Path) -> None:
    app = wsgi_app(SQLiteStore(tmp_path / "s.db"), FakeClock())
    phone = wcall(app, "/auth/alice", headers=[("user-agent", "Phone")]).cookie()
    laptop = wcall(app, "/auth/alice", headers=[("user-agent", "Laptop")]).cookie()
    assert sorted(wcall(app, "/sessions/alice", cookie=laptop).json()) == ["Laptop", "Phone"]
    assert wcall(app, "/revoke-all/alice", cookie=laptop).json() == {"revoked": 2}
    assert wcall(app, "/read/user", cookie=phone).json() == {"value": None}


def test_csrf_protection_through_wsgi() -> None:
    app = wsgi_app(CookieStore(), FakeClock(), csrf=True)
    first = wcall(app, "/token")
    cookie, token = first.cookie(), first.json()["token"]
    form = [("content-type", "application/x-www-form-urlencoded")]
    body = urlencode({"amount": "5", "_csrf_token": token}).encode()
    ok = wcall(app, "/transfer", cookie=cookie, method="POST", headers=form, body=body)
    assert ok.status == 200
    assert ok.body == b"transferred:" + body  # the app still reads the body
    assert wcall(app, "/transfer", cookie=cookie, method="POST", headers=form, body=b"amount=5").status == 403
    header = [("x-csrf-token", token), ("origin", "http://testserver")]
    assert wcall(app, "/transfer", cookie=cookie, method="POST", headers=header).status == 200
    cross = [("x-csrf-token", token), ("sec-fetch-site", "cross-site")]
    assert wcall(app, "/transfer", cookie=cookie, method="POST", headers=cross).status == 403


def test_sw40_thirty_two_threads_through_the_wsgi_adapter_lose_no_update() -> None:
    store = MemoryStore()
    app = wsgi_app(store, FakeClock())
    cookie = wcall(app, "/write/start/1").cookie()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for m in range(5):
                reply = wcall(app, f"/write/k{n}-{m}/{m}", cookie=cookie)
                assert reply.status == 200
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    data = {
        key: wcall(app, f"/read/{key}", cookie=cookie).json()["value"] for key in ["start", "k0-0", "k31-4"]
    }
    assert data == {"start": 1, "k0-0": 0, "k31-4": 4}
    everything = wcall(app, "/read/k17-3", cookie=cookie).json()["value"]
    assert everything == 3


def test_a_response_started_at_once_is_handed_to_the_server_as_the_app_made_it() -> None:
    """So the server still sees wsgi.file_wrapper's object (its sendfile fast path)."""

    class FileWrapper:
        def __init__(self, stream: Any, size: int = 8192) -> None:
            self.stream = stream

        def __iter__(self) -> Any:
            return iter([self.stream.read()])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["sessionware.session"]["seen"] = True
        start_response("200 OK", [("content-type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body"))

    middleware = sw_wsgi.SessionMiddleware(app, secret_key_base=SECRET)
    headers: list[Any] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.file_wrapper": FileWrapper,
    }

    def start_response(
        status: str, response_headers: list[Any], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        headers.extend(response_headers)
        return lambda data: None

    result = middleware(environ, start_response)
    assert isinstance(result, FileWrapper)
    assert b"".join(result) == b"file body"
    assert any(name.lower() == "set-cookie" for name, _ in headers)  # the session was still saved
