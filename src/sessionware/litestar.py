"""Litestar: ``request.session`` *is* a sessionware session.

    from litestar import Litestar, Request, post

    from sessionware import SQLiteStore
    from sessionware.litestar import SessionDep, SessionwarePlugin

    @post("/login")
    async def login(request: Request, session: SessionDep) -> None:
        session.log_in(user.id)            # the injected session, typed
        request.session["theme"] = "dark"  # the same object

    app = Litestar(
        [login],
        plugins=[
            SessionwarePlugin(
                secret_key_base=os.environ["SECRET_KEY_BASE"],
                store=SQLiteStore("s.db"),
                csrf=True,  # optional: CSRFMiddleware inside the session middleware
            )
        ],
    )

Litestar reads the session from ``scope["session"]``, where
:class:`sessionware.SessionMiddleware` puts it, so any ASGI setup works; the
plugin adds what Litestar needs on top (see :class:`SessionwarePlugin`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from ._config import STORE_DOWN_TEXT, log_store_failure
from ._keys import SecretInput
from ._session import Session
from .asgi import SessionMiddleware
from .asgi import get_session as _find_session
from .csrf import CSRFMiddleware
from .errors import (
    CSRFError,
    MissingDependency,
    ReauthenticationRequired,
    SessionLimitReached,
    StoreError,
)
from .typing import ASGIApp, Message, Receive, Scope, Send

try:
    from litestar import MediaType, Request, Response
    from litestar.config.app import AppConfig
    from litestar.di import NamedDependency, Provide
    from litestar.plugins import InitPluginProtocol
    from litestar.serialization import encode_json
    from litestar.types import Empty
    from litestar.types import Scope as LitestarScope
except ImportError as exc:  # pragma: no cover - exercised without Litestar installed
    raise MissingDependency("litestar") from exc  # the app's framework: no extra of ours

__all__ = ["SessionDep", "SessionwarePlugin", "provide_session"]


def provide_session(scope: LitestarScope) -> Session:
    """The session of this request or websocket, for Litestar's dependency injection."""
    return _find_session(scope)


SessionDep = NamedDependency[Session]
"""Annotate a handler parameter named ``session`` with it to get the injected session, typed."""


class SessionwarePlugin(InitPluginProtocol):
    """Install sessionware in a Litestar app: ``plugins=[SessionwarePlugin(secret_key_base=...)]``.

    It adds, to the app:

    - :class:`sessionware.SessionMiddleware` as the outermost app-level
      middleware, built once (Litestar instantiates middleware per route;
      this one shares one engine, store and cookie cache across routes), so
      ``request.session`` and ``socket.session`` are the
      :class:`~sessionware.Session`;
    - Litestar's own session calls, kept working: what
      ``request.set_session(data)`` sets (a mapping, dataclass, pydantic or
      msgspec model) replaces the session's data, and
      ``request.clear_session()`` drops the session (record deleted, cookie
      expired), as Litestar's session middleware would;
    - a dependency: a handler parameter ``session: SessionDep`` gets the
      session, typed as :class:`~sessionware.Session` (``SessionDep`` is
      ``NamedDependency[Session]``: Litestar injects by parameter name);
    - exception handlers so sessionware's errors raised in a handler get
      their status instead of a 500: :class:`~sessionware.ReauthenticationRequired`
      401, :class:`~sessionware.CSRFError` (from
      :func:`~sessionware.csrf.verify_csrf_token`) 403,
      :class:`~sessionware.SessionLimitReached` 409 and
      :class:`~sessionware.StoreError` (from :func:`~sessionware.user_sessions`)
      503. Handlers the app registers for these classes win.

    CSRF tokens are checked when ``csrf`` is set (below). Litestar's ``request.get_session_id()`` stays None
    (sessionware never exposes session IDs).

    Options are :class:`sessionware.SessionMiddleware`'s (``secret_key_base``
    is required; ``store``, ``expiry``, ``cookie_name``... as documented
    there), validated when the plugin is made, plus:

        dependency_key: The parameter name that gets the injected session.
            Defaults to ``"session"``; None adds no dependency.
        csrf: ``True`` puts :class:`sessionware.CSRFMiddleware` inside the
            session middleware on every route; a mapping of its options
            (``trusted_origins``, ``exempt``...) does the same with them.
            Defaults to ``False`` (no CSRF checks).

    Example::

        app = Litestar(
            route_handlers=[...],
            plugins=[SessionwarePlugin(secret_key_base=secret, store=SQLiteStore("sessions.db"), csrf=True)],
        )
    """

    def __init__(
        self,
        *,
        secret_key_base: SecretInput,
        dependency_key: str | None = "session",
        csrf: bool | Mapping[str, Any] = False,
        **options: Any,
    ) -> None:
        self.middleware = SessionMiddleware(_no_app, secret_key_base=secret_key_base, **options)
        self.dependency_key = dependency_key
        self.csrf: Mapping[str, Any] | None = (
            (csrf if isinstance(csrf, Mapping) else {}) if csrf is not False else None
        )
        if self.csrf is not None:
            CSRFMiddleware(_no_app, **self.csrf)  # a bad option raises here, not at the first request

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, self._wrap)
        if self.dependency_key is not None:
            app_config.dependencies.setdefault(
                self.dependency_key, Provide(provide_session, sync_to_thread=False)
            )
        app_config.signature_namespace.setdefault("Session", Session)
        app_config.signature_namespace.setdefault("SessionDep", SessionDep)
        handlers = app_config.exception_handlers
        for error in (ReauthenticationRequired, CSRFError, SessionLimitReached):
            handlers.setdefault(error, _with_status)
        handlers.setdefault(StoreError, _store_failed)
        return app_config

    def _wrap(self, app: Any) -> Any:  # Litestar's ASGIApp types are its own TypedDicts
        """Litestar's middleware factory: this route's app inside the one shared middleware."""
        middleware = copy.copy(self.middleware)
        inner = app if self.csrf is None else CSRFMiddleware(app, **self.csrf)
        middleware.app = _LitestarSession(inner)
        return middleware


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise AssertionError("the plugin's template middleware is never called")


class _LitestarSession:
    """Between the session middleware and the route: adopt ``set_session`` / ``clear_session``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session")
        if scope["type"] != "http" or not isinstance(session, Session):
            await self.app(scope, receive, send)
            return

        async def send_adopted(message: Message) -> None:
            if message["type"] == "http.response.start":
                _adopt(scope, session)
            await send(message)

        await self.app(scope, receive, send_adopted)


def _adopt(scope: Scope, session: Session) -> None:
    current = scope.get("session")
    if current is session:
        return
    scope["session"] = session
    if current is Empty or current is None:
        session.drop()
        return
    data = current if isinstance(current, Mapping) else json.loads(encode_json(current))
    if not isinstance(data, Mapping):
        raise TypeError(f"set_session expects a mapping or a model, got {type(current).__name__}")
    data = dict(data)  # before clearing: it may share values with the session
    session._clear_data()  # new data, same log-in (clear_session is the log-out)
    session.update(data)


def _with_status(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    status: int = getattr(exc, "status_code", 500)
    return Response(str(exc) + "\n", status_code=status, media_type=MediaType.TEXT)


def _store_failed(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    log_store_failure(exc)
    return Response(
        STORE_DOWN_TEXT,
        status_code=503,
        media_type=MediaType.TEXT,
        headers={"retry-after": "5", "cache-control": "no-store"},
    )
