"""Shared fixtures: secrets, a fake clock, a Starlette test app and a raw ASGI driver."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sessionware import CookieStore, MemoryStore, SessionMiddleware, SQLiteStore, get_session, user_sessions
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp, Message

from . import servers

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ"
OLD_SECRET = "old-secret-9876543210-zyxwvutsrqponmlkjihgfedcba-JIHGFEDCBA"
OTHER_SECRET = "other-secret-5555-QWERTYUIOPASDFGHJKLZXCVBNM-qwertyuiop-0987"
STORE_KINDS = ["encrypted", "signed", "memory", "sqlite", "redis", "redis-cluster", "postgres"]


@pytest.fixture(autouse=True)
def _start_up_warnings_as_in_a_fresh_process() -> None:
    """Each test sees the once-per-process start-up warnings as a new process would."""
    from sessionware import _engine

    _engine._warned.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_store(kind: str, tmp_path: Path, clock: FakeClock) -> Any:
    if kind == "encrypted":
        return CookieStore()
    if kind == "signed":
        return CookieStore(encrypt=False)
    if kind == "memory":
        return MemoryStore(clock=clock)
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "sessions.db", clock=clock)
    raise AssertionError(kind)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    """Every store: both cookie stores and every server-side one, on real servers."""
    if store_kind in ("encrypted", "signed"):
        return make_store(store_kind, tmp_path, clock)
    return make_server_store(store_kind, request, tmp_path, clock)


SERVER_STORE_KINDS = ["memory", "sqlite", "redis", "redis-cluster", "postgres"]


# -- real servers (see tests/servers.py): unreachable is a failure, never a skip ----------


@pytest.fixture(scope="session")
def redis_url() -> str:
    servers.check_redis()
    return servers.REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.RedisCluster]:
    cluster = servers.RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def postgres_table() -> Iterator[str]:
    """A sessions table of this test run's own in the shared test database."""
    import psycopg

    from sessionware.stores.postgres import PostgresStore

    servers.check_postgres()
    table = f"sessionware_test_{os.getpid()}"
    store = PostgresStore(servers.POSTGRES_DSN, table=table)
    store.migrate()
    store.close()
    try:
        yield table
    finally:
        with psycopg.connect(servers.POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


def unique_prefix() -> str:
    return f"sw-test-{uuid.uuid4().hex[:12]}:"


def make_server_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    """A fresh server-side store of ``kind``; network stores are closed after the test."""
    if kind in ("memory", "sqlite"):
        return make_store(kind, tmp_path, clock)
    if kind == "redis":
        from sessionware.stores.redis import RedisStore

        store: Any = RedisStore(request.getfixturevalue("redis_url"), prefix=unique_prefix())
    elif kind == "redis-cluster":
        from sessionware.stores.redis import RedisStore

        cluster = request.getfixturevalue("redis_cluster")
        store = RedisStore(cluster.url, cluster=True, prefix=unique_prefix())
    elif kind == "postgres":
        from sessionware.stores.postgres import PostgresStore

        table = request.getfixturevalue("postgres_table")
        store = PostgresStore(servers.POSTGRES_DSN, table=table)
        store._run(lambda connection: connection.execute(f"TRUNCATE {table}"))  # a fresh store per test
    else:
        raise AssertionError(kind)
    request.addfinalizer(store.close)
    return store


@pytest.fixture(params=SERVER_STORE_KINDS)
def server_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    """Every server-side store (they all keep a per-user registry), on real servers."""
    return make_server_store(str(request.param), request, tmp_path, clock)


@pytest.fixture(params=[*SERVER_STORE_KINDS, "cookie-revocation"])
def registry_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    """Every store with a per-user registry: the server-side ones, and an encrypted
    CookieStore whose logged-in sessions keep revocation records (in SQLite)."""
    if request.param == "cookie-revocation":
        return CookieStore(revocation=SQLiteStore(tmp_path / "revocation.db", clock=clock))
    return make_server_store(str(request.param), request, tmp_path, clock)


# -- the test app ----------------------------------------------------------------


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


async def read(request: Request) -> Response:
    key = request.path_params["key"]
    return JSONResponse({"value": request.session.get(key)})


async def write(request: Request) -> Response:
    request.session[request.path_params["key"]] = _value(request.path_params["value"])
    return PlainTextResponse("written")


async def incr(request: Request) -> Response:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse({"n": request.session["n"]})


async def cart_add(request: Request) -> Response:
    if "cart" not in request.session:
        request.session["cart"] = []
    else:
        request.session["cart"].append(request.path_params["item"])  # in-place, nested
    return JSONResponse({"cart": request.session["cart"]})


async def renew(request: Request) -> Response:
    get_session(request).renew()
    return PlainTextResponse("renewed")


async def login(request: Request) -> Response:
    get_session(request).renew()
    request.session["user"] = request.path_params["user"]
    return PlainTextResponse("logged in")


async def auth(request: Request) -> Response:
    user: str | int = request.path_params["user"]
    if isinstance(user, str) and user.isdigit():
        user = int(user)
    keep = request.query_params.get("keep")
    get_session(request).log_in(user, keep=[keep] if keep else [])
    return PlainTextResponse("logged in")


async def sessions(request: Request) -> Response:
    session = get_session(request)
    listing = await user_sessions(request).list(request.path_params["user"], current=session)
    return JSONResponse([dataclasses.asdict(info) for info in listing])


async def revoke(request: Request) -> Response:
    revoked = await user_sessions(request).revoke(request.path_params["user"], request.path_params["handle"])
    return JSONResponse({"revoked": revoked})


async def revoke_others(request: Request) -> Response:
    session = get_session(request)
    assert session.user_id is not None
    count = await user_sessions(request).revoke_all(session.user_id, keep=session)
    return JSONResponse({"revoked": count})


async def revoke_all(request: Request) -> Response:
    count = await user_sessions(request).revoke_all(request.path_params["user"])
    return JSONResponse({"revoked": count})


async def whoami(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user_id, "auth_at": session.auth_at, "data": dict(session)})


async def drop(request: Request) -> Response:
    get_session(request).drop()
    return PlainTextResponse("dropped")


async def drop_then_write(request: Request) -> Response:
    get_session(request).drop()
    request.session["after"] = "drop"
    return PlainTextResponse("dropped")


async def ignore_write(request: Request) -> Response:
    request.session["ignored"] = True
    get_session(request).ignore()
    return PlainTextResponse("ignored")


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def nothing(request: Request) -> Response:
    return PlainTextResponse("nothing")


async def fail_after_write(request: Request) -> Response:
    request.session["failed"] = True
    return PlainTextResponse("boom", status_code=500)


async def big(request: Request) -> Response:
    request.session["big"] = "x" * int(request.path_params["size"])
    return PlainTextResponse("big")


async def info(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse(
        {
            "data": dict(session),
            "is_new": session.is_new,
            "created_at": session.created_at,
            "last_active": session.last_active,
            "expires_at": session.expires_at,
        }
    )


async def cached(request: Request) -> Response:
    request.session["x"] = 1
    return PlainTextResponse("ok", headers={"cache-control": "public, max-age=3600", "vary": "Accept"})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.session.get("user")})
    try:
        websocket.session["written"] = True
    except Exception as exc:
        await websocket.send_json({"error": type(exc).__name__})
    else:
        await websocket.send_json({"error": None})
    await websocket.close()


ROUTES = [
    Route("/read/{key}", read),
    Route("/write/{key}/{value}", write, methods=["GET", "POST"]),
    Route("/incr", incr),
    Route("/cart/{item}", cart_add),
    Route("/renew", renew),
    Route("/login/{user}", login, methods=["GET", "POST"]),
    Route("/auth/{user}", auth, methods=["GET", "POST"]),
    Route("/sessions/{user}", sessions),
    Route("/revoke/{user}/{handle}", revoke, methods=["GET", "POST"]),
    Route("/revoke-others", revoke_others, methods=["GET", "POST"]),
    Route("/revoke-all/{user}", revoke_all, methods=["GET", "POST"]),
    Route("/whoami", whoami),
    Route("/drop", drop),
    Route("/drop-then-write", drop_then_write),
    Route("/ignore-write", ignore_write),
    Route("/clear", clear),
    Route("/", nothing),
    Route("/fail", fail_after_write),
    Route("/big/{size}", big),
    Route("/info", info),
    Route("/cached", cached),
    WebSocketRoute("/ws", ws),
]


def build_app(store: Any, clock: FakeClock, secret: Any = SECRET, **options: Any) -> ASGIApp:
    app = Starlette(routes=ROUTES)
    app.add_middleware(SessionMiddleware, secret_key_base=secret, store=store, clock=clock, **options)
    return app


@pytest.fixture
def make_app(store: Any, clock: FakeClock) -> Callable[..., ASGIApp]:
    """Build the test app around the parametrized store; options go to the middleware."""

    def factory(**options: Any) -> ASGIApp:
        return build_app(options.pop("store", store), clock, **options)

    return factory


# -- a raw ASGI driver: exact headers, no cookie jar ------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    @property
    def set_cookie(self) -> str | None:
        return self.header("set-cookie")

    def cookie(self, name: str | None = None) -> str:
        """The ``name=value`` pair the response set, ready for a Cookie header.

        Without ``name``, the default name of the request's scheme: ``session``
        on http, ``__Host-session`` on https.
        """
        header = self.set_cookie
        assert header is not None, "no Set-Cookie in the response"
        pair = header.split(";", 1)[0]
        names = ("session", "__Host-session") if name is None else (name,)
        assert pair.split("=", 1)[0] in names, header
        return pair

    def json(self) -> Any:
        return json.loads(self.body)


async def _call(app: ASGIApp, scope: dict[str, Any], body: bytes = b"", chunk: int = 0) -> Reply:
    reply = Reply(status=0)
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]

    async def receive() -> Message:
        if pieces:
            piece = pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(pieces)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = [
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message["headers"]
            ]
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")

    await app(scope, receive, send)
    return reply


def make_scope(
    path: str = "/",
    *,
    cookie: str | None = None,
    method: str = "GET",
    scheme: str = "http",
    headers: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    raw_headers = [(b"host", b"testserver")]
    if cookie is not None:
        raw_headers.append((b"cookie", cookie.encode("latin-1")))
    for name, value in headers or []:
        raw_headers.append((name.lower().encode(), value.encode("latin-1")))
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443 if scheme == "https" else 80),
    }


async def acall(app: ASGIApp, path: str = "/", *, body: bytes = b"", chunk: int = 0, **options: Any) -> Reply:
    """:func:`call` for tests that run several requests at once in one event loop."""
    return await _call(app, make_scope(path, **options), body, chunk)


def call(app: ASGIApp, path: str = "/", *, body: bytes = b"", chunk: int = 0, **options: Any) -> Reply:
    """Send one request straight to an ASGI app. ``cookie`` is a Cookie header value;
    ``body`` arrives in pieces of ``chunk`` bytes if given."""
    return asyncio.run(_call(app, make_scope(path, **options), body, chunk))
