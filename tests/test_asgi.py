"""The ASGI adapter: frameworks' test clients, failures, options, raw protocol details."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import (
    ConfigurationError,
    CookieStore,
    MemoryStore,
    Session,
    SessionError,
    SessionMiddleware,
    SessionTooLarge,
    SQLiteStore,
    get_session,
)
from sessionware.testing import FakeClock
from sessionware.typing import Change, Message, Receive, Scope, Send

from .conftest import SECRET, build_app, call, make_scope
from .doubles import Recording

FlakyStore = Recording  # a MemoryStore whose connection can be cut, as a network store's can


# -- frameworks --------------------------------------------------------------------


def session_of(request: Request) -> Session:
    return get_session(request)


SessionDep = Annotated[Session, Depends(session_of)]


def test_a_starlette_app_keeps_a_user_across_requests_with_its_test_client(tmp_path: Path) -> None:
    client = TestClient(build_app(SQLiteStore(tmp_path / "s.db"), FakeClock()))
    assert client.get("/login/alice").status_code == 200
    assert client.get("/read/user").json() == {"value": "alice"}
    assert client.get("/incr").json() == {"n": 1}
    assert client.get("/incr").json() == {"n": 2}
    client.get("/drop")
    assert client.get("/read/user").json() == {"value": None}


def test_a_fastapi_app_gets_a_typed_session_from_a_dependency() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=MemoryStore())

    @app.post("/visit")
    def visit(session: SessionDep) -> dict[str, Any]:
        session["visits"] = session.get("visits", 0) + 1
        if session["visits"] == 1:
            session.renew()
        return {"visits": session["visits"], "new": session.is_new}

    client = TestClient(app)
    assert client.post("/visit").json() == {"visits": 1, "new": True}
    assert client.post("/visit").json() == {"visits": 2, "new": False}
    assert client.post("/visit").json() == {"visits": 3, "new": False}


def test_get_session_accepts_a_request_or_a_scope_and_explains_a_missing_middleware() -> None:
    seen: list[bool] = []

    async def endpoint(request: Request) -> Response:
        seen.append(get_session(request) is get_session(request.scope) is request.session)
        return PlainTextResponse("ok")

    wrapped = SessionMiddleware(Starlette(routes=[Route("/", endpoint)]), secret_key_base=SECRET)
    assert call(wrapped, "/").status == 200
    assert seen == [True]
    with pytest.raises(SessionError, match="SessionMiddleware"):
        get_session({"type": "http"})
    with pytest.raises(SessionError, match="SessionMiddleware"):
        get_session(object())


# -- failures ------------------------------------------------------------------------


def test_a_store_that_is_down_at_load_answers_503_and_never_runs_the_app_anonymously(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    app = build_app(store, FakeClock())
    cookie = call(app, "/login/alice").cookie()
    store.down = True
    with caplog.at_level(logging.ERROR, logger="sessionware"):
        reply = call(app, "/read/user", cookie=cookie)
    assert reply.status == 503
    assert reply.set_cookie is None
    assert b"sessions cannot be loaded or saved" in reply.body
    assert any("store is unreachable" in record.getMessage() for record in caplog.records)
    store.down = False
    assert call(app, "/read/user", cookie=cookie).json() == {"value": "alice"}


def test_a_store_that_fails_on_save_replaces_the_response_with_503() -> None:
    store = FlakyStore()
    app = build_app(store, FakeClock())
    cookie = call(app, "/write/a/1").cookie()
    calls = {"n": 0}
    real_update = store.inner.update

    def failing_update(key: str, change: Change) -> bool:
        calls["n"] += 1
        raise ConnectionError("gone")

    store.inner.update = failing_update
    reply = call(app, "/write/a/2", cookie=cookie)
    assert reply.status == 503
    assert reply.body.startswith(b"Service Unavailable")
    assert b"written" not in reply.body
    assert reply.set_cookie is None
    assert calls["n"] == 1
    store.inner.update = real_update
    assert call(app, "/read/a", cookie=cookie).json() == {"value": 1}


def test_a_logout_while_the_store_is_down_is_not_reported_as_done() -> None:
    store = FlakyStore()
    app = build_app(store, FakeClock())
    cookie = call(app, "/login/alice").cookie()
    original = store.inner.delete

    def failing_delete(key: str) -> bool:
        raise ConnectionError("gone")

    store.inner.delete = failing_delete
    reply = call(app, "/drop", cookie=cookie)
    assert reply.status == 503
    assert reply.set_cookie is None
    store.inner.delete = original
    assert call(app, "/read/user", cookie=cookie).json() == {"value": "alice"}  # still there: retry


def test_the_store_error_response_can_be_customised() -> None:
    async def custom(scope: Scope, receive: Receive, send: Send) -> None:
        error = scope["sessionware.error"]
        body = f"custom: {type(error).__name__}".encode()
        await send({"type": "http.response.start", "status": 503, "headers": [(b"x-custom", b"1")]})
        await send({"type": "http.response.body", "body": body})

    store = FlakyStore()
    app = build_app(store, FakeClock(), store_error_app=custom)
    cookie = call(app, "/write/a/1").cookie()
    store.down = True
    reply = call(app, "/read/a", cookie=cookie)
    assert (reply.status, reply.header("x-custom"), reply.body) == (503, "1", b"custom: StoreUnavailable")


def test_an_oversized_cookie_session_raises_instead_of_being_dropped_by_the_browser() -> None:
    client = TestClient(build_app(CookieStore(), FakeClock()))
    with pytest.raises(SessionTooLarge) as caught:
        client.get("/big/5000")
    assert caught.value.size > 4096
    assert "server-side store" in str(caught.value)
    assert client.get("/big/2000").status_code == 200


def test_a_server_side_store_holds_what_a_cookie_cannot(tmp_path: Path) -> None:
    client = TestClient(build_app(SQLiteStore(tmp_path / "s.db"), FakeClock()))
    assert client.get("/big/100000").status_code == 200
    assert len(client.get("/read/big").json()["value"]) == 100000


# -- options -------------------------------------------------------------------------


async def _noop(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"store": "redis://localhost"}, "store"),
        ({"store": object()}, "store"),
        ({"expiry": "forever"}, "expiry"),
        ({"cookie_name": "my session"}, "cookie_name"),
        ({"same_site": "none"}, "same_site"),
        ({"secure": "sometimes"}, "secure"),
        ({"cookie_name": "__Host-s", "domain": "example.com"}, "__Host-"),
        ({"store": MemoryStore}, "MemoryStore\\(...\\)"),
        ({"persistent": "no"}, "persistent"),
        ({"partitioned": 1, "secure": True}, "partitioned"),
    ],
)
def test_bad_options_raise_configuration_error_naming_the_option(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        SessionMiddleware(_noop, secret_key_base=SECRET, **options)


def test_expiry_accepts_preset_names() -> None:
    middleware = SessionMiddleware(_noop, secret_key_base=SECRET, expiry="AAL3")
    assert middleware.engine.expiry.idle_timeout == 15 * 60


def test_persistent_cookies_carry_max_age_up_to_the_deadline() -> None:
    reply = call(build_app(CookieStore(), FakeClock(), persistent=True), "/write/a/1")
    assert reply.set_cookie is not None
    assert "; Max-Age=1800" in reply.set_cookie  # AAL2: 30 minutes idle is the nearer deadline


def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:  # pragma: no cover - not called
        return {}

    async def send(message: Message) -> None:  # pragma: no cover - not called
        pass

    asyncio.run(SessionMiddleware(inner, secret_key_base=SECRET)({"type": "lifespan"}, receive, send))
    assert seen == [{"type": "lifespan"}]


def test_an_http2_request_with_split_cookie_headers_is_read_as_one() -> None:
    app = build_app(MemoryStore(), FakeClock())
    cookie = call(app, "/write/a/1").cookie()
    reply = call(app, "/read/a", headers=[("cookie", "x=1"), ("cookie", cookie), ("cookie", "y=2")])
    assert reply.json() == {"value": 1}


class SometimesBlocking:
    """An async store whose inline face answers at once, except while ``blocking``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.blocking = False
        self.awaited: list[str] = []
        self.inline = _BlockingInline(self)

    async def load(self, key: str) -> Any:
        self.awaited.append("load")
        return self.inner.load(key)

    async def create(self, key: str, head: bytes, fields: Any, ttl: int, user: str | None) -> None:
        self.awaited.append("create")
        self.inner.create(key, head, fields, ttl, user)

    async def update(self, key: str, change: Change) -> bool:
        self.awaited.append("update")
        return self.inner.update(key, change)

    async def delete(self, key: str) -> bool:
        self.awaited.append("delete")
        return self.inner.delete(key)


class _BlockingInline:
    def __init__(self, outer: SometimesBlocking) -> None:
        self.outer = outer

    def _answer(self, name: str, *args: Any) -> Any:
        from sessionware._steps import WouldBlock

        if self.outer.blocking:
            raise WouldBlock
        return getattr(self.outer.inner, name)(*args)

    def load(self, key: str) -> Any:
        return self._answer("load", key)

    def create(self, key: str, head: bytes, fields: Any, ttl: int, user: str | None) -> None:
        self._answer("create", key, head, fields, ttl, user)

    def update(self, key: str, change: Change) -> bool:
        return self._answer("update", key, change)  # type: ignore[no-any-return]

    def delete(self, key: str) -> bool:
        return self._answer("delete", key)  # type: ignore[no-any-return]


def test_a_store_whose_inline_face_would_block_is_asked_through_its_async_face() -> None:
    store = SometimesBlocking()
    app = build_app(store, FakeClock())
    cookie = call(app, "/write/a/1").cookie()
    assert call(app, "/read/a", cookie=cookie).json() == {"value": 1}
    assert store.awaited == []  # answered inline every time
    store.blocking = True
    assert call(app, "/write/a/2", cookie=cookie).status == 200
    assert call(app, "/read/a", cookie=cookie).json() == {"value": 2}
    assert store.awaited == ["load", "update", "load"]  # the same calls, awaited instead


def test_an_inline_store_that_fails_answers_503_as_any_store_failure() -> None:
    store = SometimesBlocking()
    app = build_app(store, FakeClock())
    cookie = call(app, "/write/a/1").cookie()

    def refused(key: str) -> None:
        raise ConnectionError("gone")

    store.inner.load = refused  # type: ignore[method-assign]
    reply = call(app, "/read/a", cookie=cookie)
    assert reply.status == 503


def test_a_store_failure_in_the_app_is_a_503_when_the_middleware_wraps_the_app_from_outside() -> None:
    """``app = SessionMiddleware(starlette_app, ...)``: Starlette's ServerErrorMiddleware, inside,
    makes a 500 of the app's exception before this middleware sees it; the answer is still the 503."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sessionware import user_sessions

    store = FlakyStore()

    async def login(request: Request) -> JSONResponse:
        get_session(request).log_in("alice")
        return JSONResponse({"ok": True})

    async def sessions(request: Request) -> JSONResponse:
        infos = await user_sessions(request).list("alice")
        return JSONResponse(len(infos))

    inner = Starlette(routes=[Route("/login", login), Route("/sessions", sessions)])
    app = SessionMiddleware(inner, secret_key_base=SECRET, store=store)
    cookie = call(app, "/login").cookie()
    assert call(app, "/sessions", cookie=cookie).json() == 1
    real = store.inner.user_sessions

    def unreachable(user: str) -> Any:
        raise ConnectionError("gone")

    store.inner.user_sessions = unreachable
    reply = call(app, "/sessions", cookie=cookie)
    assert reply.status == 503
    assert b"sessions cannot be loaded or saved" in reply.body
    store.inner.user_sessions = real
    assert call(app, "/sessions", cookie=cookie).json() == 1


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_a_finished_request_leaves_no_cycle_for_the_garbage_collector(kind: str) -> None:
    """scope["session"] holds the session, which holds the scope: once the request is over,
    reference counting alone frees both (the middleware drops the session's link)."""
    import gc
    import weakref

    seen: list[weakref.ref[Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(weakref.ref(scope["session"]))
        if kind == "http":
            scope["session"]["n"] = 1
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(app, secret_key_base=SECRET, store=CookieStore(revocation=False))

    async def run() -> None:
        scope = make_scope("/")
        scope["type"] = kind

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            pass

        await middleware(scope, receive, send)

    gc.collect()
    gc.disable()
    try:
        asyncio.run(run())
        assert len(seen) == 1
        assert seen[0]() is None, gc.get_referrers(seen[0]())
    finally:
        gc.enable()
