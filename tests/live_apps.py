"""The apps the live servers of ``tests/live.py`` run: Starlette (ASGI) and Flask (WSGI).

Both factories read their configuration from environment variables, so that
uvicorn and gunicorn -- and every worker process they start -- build the same
app:

``SW_LIVE_SESSION``
    What keeps the session. ``sessionware`` (the default) for both; peers for
    the benchmark: ``none`` (a plain dict holding ``{"user": "alice"}``, nothing
    saved), ``starlette`` (Starlette's ``SessionMiddleware``) and
    ``starsessions`` (its ``RedisStore``) under ASGI; ``flask`` (Flask's
    built-in cookie session) and ``flask-session`` (Flask-Session's Redis
    backend) under WSGI.
``SW_LIVE_STORE``
    sessionware's store: a URL for :func:`sessionware.stores.from_url`, or
    ``cookie`` (the default: the encrypted cookie store).
``SW_LIVE_SECRET``
    The secret (``secret_key_base``; the peers' signing key).
``SW_LIVE_PREFIX`` / ``SW_LIVE_TABLE``
    The Redis key prefix and the PostgreSQL table of this run.
``SW_LIVE_REDIS``
    The Redis URL of the peers that use Redis.
``SW_LIVE_DELAY``
    Seconds ``/slow/...`` waits between loading and writing. Defaults to 0.3.

Routes (the same in both):

- ``/health``: ``ok``; every response names the worker's PID in ``x-worker``.
- ``/seed``: writes ``user = "alice"`` (a new session, whose cookie comes back).
- ``/slow/{batch}/{key}/{value}``: loads the session, waits ``SW_LIVE_DELAY``,
  then writes ``session[key] = value``. A per-process counter of requests of
  ``batch`` in this wait proves that they overlapped: each response reports
  the highest count seen so far in ``x-in-flight-peak``.
- ``/session``: the whole session as JSON.
- ``/read``: the value of ``user`` (the benchmark's read).
- ``/write/{n}``: writes ``n = <n>`` (the benchmark's write).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

import flask
from flask.sessions import SessionInterface, SessionMixin
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.flask import Sessionware
from sessionware.stores import from_url

__all__ = ["asgi_app", "wsgi_app"]


class InFlight:
    """Per batch: how many requests are inside the wait now, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    def enter(self, batch: str) -> None:
        with self._lock:
            self._now[batch] = self._now.get(batch, 0) + 1
            self._peak[batch] = max(self._peak.get(batch, 0), self._now[batch])

    def leave(self, batch: str) -> int:
        """Leave; the batch's peak so far."""
        with self._lock:
            self._now[batch] -= 1
            return self._peak[batch]


def _delay() -> float:
    return float(os.environ.get("SW_LIVE_DELAY", "0.3"))


def _secret() -> str:
    return os.environ["SW_LIVE_SECRET"]


def _sessionware_store() -> Any:
    """``SW_LIVE_STORE`` as a store (``None``: the cookie store)."""
    url = os.environ.get("SW_LIVE_STORE", "cookie")
    if url == "cookie":
        return None
    options: dict[str, Any] = {}
    if url.startswith(("redis://", "redis+cluster://")):
        options["prefix"] = os.environ["SW_LIVE_PREFIX"]
    elif url.startswith(("postgresql://", "postgres://")):
        options["table"] = os.environ["SW_LIVE_TABLE"]
    return from_url(url, **options)


def _value(text: str) -> Any:
    return int(text) if text.isdigit() else text


# -- ASGI: Starlette --------------------------------------------------------------------


def asgi_app() -> Starlette:
    """The Starlette app, with the session keeper ``SW_LIVE_SESSION`` names."""
    worker = {"x-worker": str(os.getpid())}
    in_flight = InFlight()
    delay = _delay()

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok", headers=worker)

    async def seed(request: Request) -> Response:
        request.session["user"] = "alice"
        return PlainTextResponse("seeded", headers=worker)

    async def slow(request: Request) -> Response:
        batch, key = request.path_params["batch"], request.path_params["key"]
        request.session.get("user")  # loaded (the middleware loaded it before this ran)
        in_flight.enter(batch)
        try:
            await asyncio.sleep(delay)
            request.session[key] = _value(request.path_params["value"])
        finally:
            peak = in_flight.leave(batch)
        return PlainTextResponse("written", headers={**worker, "x-in-flight-peak": str(peak)})

    async def whole(request: Request) -> Response:
        return JSONResponse(dict(request.session), headers=worker)

    async def read(request: Request) -> Response:
        return PlainTextResponse(str(request.session["user"]))

    async def write(request: Request) -> Response:
        request.session["n"] = int(request.path_params["n"])
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/read", read),
            Route("/write/{n}", write),
            Route("/health", health),
            Route("/seed", seed),
            Route("/slow/{batch}/{key}/{value}", slow),
            Route("/session", whole),
        ]
    )
    kind = os.environ.get("SW_LIVE_SESSION", "sessionware")
    if kind == "sessionware":
        app.add_middleware(SessionMiddleware, secret_key_base=_secret(), store=_sessionware_store())
    elif kind == "none":
        app.add_middleware(_PlainSession)
    elif kind == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware

        app.add_middleware(StarletteSessionMiddleware, secret_key=_secret())
    elif kind == "starsessions":
        from redis.asyncio import Redis
        from starsessions import SessionAutoloadMiddleware
        from starsessions import SessionMiddleware as StarSessionMiddleware
        from starsessions.stores.redis import RedisStore as StarRedisStore

        connection = Redis.from_url(os.environ["SW_LIVE_REDIS"])
        store = StarRedisStore(connection=connection, prefix=os.environ["SW_LIVE_PREFIX"])
        app.add_middleware(SessionAutoloadMiddleware)  # added first: runs inside the session middleware
        app.add_middleware(StarSessionMiddleware, store=store, cookie_https_only=False, lifetime=3600 * 12)
    else:
        raise ValueError(f"SW_LIVE_SESSION={kind!r} is not an ASGI session keeper")
    return app


class _PlainSession:
    """The no-middleware baseline: a plain dict in ``scope["session"]``, nothing verified or saved."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["session"] = {"user": "alice"}
        await self.app(scope, receive, send)


# -- WSGI: Flask ------------------------------------------------------------------------


def wsgi_app() -> flask.Flask:
    """The Flask app, with the session keeper ``SW_LIVE_SESSION`` names."""
    app = flask.Flask("sessionware_live")
    app.config["SECRET_KEY"] = _secret()
    worker = {"x-worker": str(os.getpid())}
    in_flight = InFlight()
    delay = _delay()

    @app.get("/read")
    def read() -> str:
        return str(flask.session["user"])

    @app.get("/write/<int:n>")
    def write(n: int) -> str:
        flask.session["n"] = n
        return "ok"

    @app.get("/health")
    def health() -> tuple[str, dict[str, str]]:
        return "ok", worker

    @app.get("/seed")
    def seed() -> tuple[str, dict[str, str]]:
        flask.session["user"] = "alice"
        return "seeded", worker

    @app.get("/slow/<batch>/<key>/<value>")
    def slow(batch: str, key: str, value: str) -> tuple[str, dict[str, str]]:
        flask.session.get("user")  # loaded (the interface opened it before the view ran)
        in_flight.enter(batch)
        try:
            time.sleep(delay)
            flask.session[key] = _value(value)
        finally:
            peak = in_flight.leave(batch)
        return "written", {**worker, "x-in-flight-peak": str(peak)}

    @app.get("/session")
    def whole() -> tuple[dict[str, Any], dict[str, str]]:
        return dict(flask.session), worker

    kind = os.environ.get("SW_LIVE_SESSION", "sessionware")
    if kind == "sessionware":
        # The cookie store without a revocation store warns at start-up, by design: noise here.
        logging.getLogger("sessionware").setLevel(logging.ERROR)
        Sessionware(app, secret_key_base=_secret(), store=_sessionware_store())
    elif kind == "none":
        app.session_interface = _NoSession()
    elif kind == "flask":
        pass  # Flask's SecureCookieSessionInterface
    elif kind == "flask-session":
        import redis
        from flask_session import Session as FlaskSession

        app.config.update(
            SESSION_TYPE="redis",
            SESSION_REDIS=redis.Redis.from_url(os.environ["SW_LIVE_REDIS"]),
            SESSION_KEY_PREFIX=os.environ["SW_LIVE_PREFIX"],
        )
        FlaskSession(app)
    else:
        raise ValueError(f"SW_LIVE_SESSION={kind!r} is not a WSGI session keeper")
    return app


class _PlainDict(dict[str, Any], SessionMixin):
    pass


class _NoSession(SessionInterface):
    """The no-session baseline: a plain dict with the seeded data, nothing verified or saved."""

    def open_session(self, app: flask.Flask, request: flask.Request) -> _PlainDict:
        return _PlainDict(user="alice")

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        return None
