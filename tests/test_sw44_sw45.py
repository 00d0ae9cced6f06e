"""SW-44 (a websocket outliving its session is closed with 4401) and SW-45 (the anomaly hook)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionware import Expiry, MemoryStore, SessionMiddleware, get_session
from sessionware.anomaly import Action, Changes, default_policy
from sessionware.testing import FakeClock

from .conftest import ROUTES, SECRET, acall, call


async def watch(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": get_session(websocket).user_id})
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as exc:
        websocket.scope["test.disconnected"].append(exc.code)


def ws_app(store: Any, clock: FakeClock, **options: Any) -> Any:
    app = Starlette(routes=[*ROUTES, WebSocketRoute("/watch", watch)])
    app.add_middleware(
        SessionMiddleware, secret_key_base=SECRET, store=store, clock=clock, websocket_recheck=0.02, **options
    )
    return app


async def open_socket(app: Any, cookie: str, disconnected: list[int]) -> tuple[asyncio.Task[None], list[Any]]:
    sent: list[Any] = []
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    scope = {
        "type": "websocket",
        "path": "/watch",
        "raw_path": b"/watch",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "test.disconnected": disconnected,
    }

    async def send(message: Any) -> None:
        sent.append(message)

    task = asyncio.ensure_future(app(scope, inbox.get, send))
    for _ in range(100):
        if any(m["type"] == "websocket.send" for m in sent):
            break
        await asyncio.sleep(0.01)
    return task, sent


async def closed_with(sent: list[Any], task: asyncio.Task[None]) -> int | None:
    for _ in range(200):
        codes: list[int] = [m.get("code") for m in sent if m["type"] == "websocket.close"]
        if codes:
            await asyncio.wait_for(task, 2)
            return codes[0]
        await asyncio.sleep(0.01)
    task.cancel()
    return None


@pytest.mark.parametrize("how", ["revoked", "logged out"])
def test_sw44_a_websocket_is_closed_with_4401_when_its_session_is_revoked_or_logged_out(
    registry_store: Any, clock: FakeClock, how: str
) -> None:
    app = ws_app(registry_store, clock)

    async def scenario() -> None:
        cookie = (await acall(app, "/auth/alice")).cookie()
        disconnected: list[int] = []
        task, sent = await open_socket(app, cookie, disconnected)
        assert sent[-1]["type"] == "websocket.send"
        await asyncio.sleep(0.06)
        assert not task.done()  # a live session keeps its socket
        await acall(app, "/revoke-all/alice" if how == "revoked" else "/clear", cookie=cookie)
        assert await closed_with(sent, task) == 4401
        assert disconnected == [4401]  # the app was told, and returned

    asyncio.run(scenario())


def test_sw44_a_websocket_is_closed_when_its_session_expires_while_open(
    server_store: Any, clock: FakeClock
) -> None:
    app = ws_app(server_store, clock, expiry=Expiry(idle_timeout=600, absolute_timeout=3600))

    async def scenario() -> None:
        cookie = (await acall(app, "/auth/alice")).cookie()
        task, sent = await open_socket(app, cookie, [])
        clock.advance(601)
        assert await closed_with(sent, task) == 4401

    asyncio.run(scenario())


def test_sw44_without_rechecks_the_socket_stays_open(clock: FakeClock) -> None:
    app = Starlette(routes=[*ROUTES, WebSocketRoute("/watch", watch)])
    app.add_middleware(
        SessionMiddleware, secret_key_base=SECRET, store=MemoryStore(), clock=clock, websocket_recheck=None
    )

    async def scenario() -> None:
        cookie = (await acall(app, "/auth/alice")).cookie()
        task, _sent = await open_socket(app, cookie, [])
        await acall(app, "/revoke-all/alice", cookie=cookie)
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()

    asyncio.run(scenario())


# -- SW-45 -------------------------------------------------------------------------

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def sensitive(request: Request) -> Response:
    session = get_session(request)
    session.require_recent_auth(3600)
    return JSONResponse({"user": session.user_id})


async def reauth(request: Request) -> Response:
    get_session(request).reauthenticated()
    return JSONResponse({"ok": True})


def anomaly_app(store: Any, clock: FakeClock, hook: Any) -> Any:
    app = Starlette(routes=[*ROUTES, Route("/sensitive", sensitive), Route("/reauth", reauth)])
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=store, clock=clock, anomaly=hook)
    return app


def get(app: Any, path: str, cookie: str | None = None, agent: str = CHROME, language: str = "en-GB") -> Any:
    return call(app, path, cookie=cookie, headers=[("user-agent", agent), ("accept-language", language)])


@pytest.mark.parametrize("answer", ["allow", "reauth", "drop"])
def test_sw45_a_user_agent_change_calls_the_hook_and_its_answer_is_enforced(
    registry_store: Any, clock: FakeClock, answer: str
) -> None:
    calls: list[Changes] = []

    def hook(session: Any, changes: Changes) -> str:
        calls.append(changes)
        return answer

    app = anomaly_app(registry_store, clock, hook)
    cookie = get(app, "/auth/alice").cookie()
    assert get(app, "/sensitive", cookie).json() == {"user": "alice"}
    assert calls == []  # same context: the hook is not asked
    reply = get(app, "/sensitive", cookie, agent=FIREFOX)
    assert calls == [Changes(user_agent=("Chrome", "Firefox"))]
    if answer == "allow":
        assert reply.status == 200
        cookie = reply.cookie() if reply.set_cookie else cookie
        get(app, "/whoami", cookie, agent=FIREFOX)
        assert len(calls) == 1  # the new context became the session's
    elif answer == "reauth":
        assert reply.status == 401  # the recent-auth guard asks for the password
        assert get(app, "/whoami", cookie, agent=FIREFOX).json()["user"] == "alice"
        cookie = get(app, "/reauth", cookie, agent=FIREFOX).cookie()
        assert get(app, "/sensitive", cookie, agent=FIREFOX).status == 200
    else:
        assert reply.status == 401  # logged out before the app ran
        assert get(app, "/whoami", cookie).json()["user"] is None


def test_sw45_with_the_hook_off_a_changed_context_changes_nothing(
    registry_store: Any, clock: FakeClock
) -> None:
    app = anomaly_app(registry_store, clock, None)
    cookie = get(app, "/auth/alice").cookie()
    assert get(app, "/sensitive", cookie, agent=FIREFOX, language="fr").json() == {"user": "alice"}


def test_sw45_the_default_policy_drops_on_another_browser_and_asks_again_on_another_network() -> None:
    assert default_policy(None, Changes(user_agent=("Chrome", "Firefox"))) == "drop"
    assert default_policy(None, Changes(ip_prefix=("198.51.100.0/24", "203.0.113.0/24"))) == "reauth"
    assert default_policy(None, Changes(accept_language=("en", "fr"))) == "allow"


def test_sw45_a_raising_hook_counts_as_reauth(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    def hook(session: Any, changes: Changes) -> str:
        raise RuntimeError("policy bug")

    app = anomaly_app(MemoryStore(), clock, hook)
    cookie = get(app, "/auth/alice").cookie()
    assert get(app, "/sensitive", cookie, language="fr").status == 401
    assert "anomaly hook raised" in caplog.text


@pytest.mark.parametrize("answer", ["allow", "reauth", "drop"])
def test_sw45_an_async_hook_is_awaited_under_asgi(clock: FakeClock, answer: str) -> None:
    import asyncio

    calls: list[Changes] = []

    async def hook(session: Any, changes: Changes) -> str:
        await asyncio.sleep(0)  # a lookup of the app's own, on the event loop
        calls.append(changes)
        return answer

    app = anomaly_app(MemoryStore(), clock, hook)
    cookie = get(app, "/auth/alice").cookie()
    reply = get(app, "/sensitive", cookie, agent=FIREFOX)
    assert calls == [Changes(user_agent=("Chrome", "Firefox"))]
    assert reply.status == (200 if answer == "allow" else 401)
    assert get(app, "/whoami", cookie).json()["user"] == (None if answer == "drop" else "alice")


def test_sw45_an_async_hook_that_raises_counts_as_reauth(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def hook(session: Any, changes: Changes) -> str:
        raise RuntimeError("policy bug")

    app = anomaly_app(MemoryStore(), clock, hook)
    cookie = get(app, "/auth/alice").cookie()
    assert get(app, "/sensitive", cookie, language="fr").status == 401
    assert "anomaly hook raised" in caplog.text


def test_sw45_an_async_hook_runs_to_completion_under_flask(clock: FakeClock) -> None:
    import flask

    from sessionware.flask import Sessionware, current_session

    async def hook(session: Any, changes: Changes) -> str:
        return "drop"

    app = flask.Flask(__name__)
    Sessionware(app, secret_key_base=SECRET, store=MemoryStore(), clock=clock, anomaly=hook)

    @app.post("/login")
    def login() -> str:
        current_session().log_in("alice")
        return ""

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        return {"user": current_session().user_id}

    client = app.test_client()
    client.post("/login", headers={"User-Agent": CHROME})
    assert client.get("/whoami", headers={"User-Agent": CHROME}).json == {"user": "alice"}
    assert client.get("/whoami", headers={"User-Agent": FIREFOX}).json == {"user": None}


def test_sw45_an_async_hook_called_where_a_loop_runs_counts_as_reauth(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from werkzeug.test import Client

    from sessionware import wsgi as sw_wsgi

    async def hook(session: Any, changes: Changes) -> Action:
        return "drop"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = sw_wsgi.get_session(environ)
        if environ["PATH_INFO"] == "/login":
            session.log_in("alice")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session.user_id).encode()]

    wrapped = sw_wsgi.SessionMiddleware(
        app, secret_key_base=SECRET, store=MemoryStore(), clock=clock, anomaly=hook
    )
    client = Client(wrapped)
    client.get("/login", headers={"User-Agent": CHROME})

    async def inside_a_loop() -> bytes:
        reply: bytes = client.get("/", headers={"User-Agent": FIREFOX}).data  # a WSGI call from async code
        return reply

    assert asyncio.run(inside_a_loop()) == b"alice"  # not dropped: taken as 'reauth'
    assert "the async anomaly hook could not run" in caplog.text
