"""The WSGI adapter: the same engine and lifecycle as the ASGI middleware, for WSGI apps."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

from . import _csrf
from ._arguments import STARLETTE_NAMES, CheckedArguments
from ._closing import close_session as _close
from ._config import STORE_DOWN_TEXT, build_engine, log_store_failure
from ._cookies import Secure
from ._dbsc_adapt import after_close_sync, endpoint_sync, status_line, with_length, wsgi_request
from ._dbsc_flow import Answer, Runtime
from ._engine import Engine, engine_of
from ._expiry import Expiry
from ._extras import after_close, after_open, events_of, publish_sync
from ._keys import SecretInput
from ._loading import open_session as _open
from ._registry import UserSessions
from ._session import Session
from ._steps import run_sync
from .anomaly import AnomalyHook
from .dbsc import DBSC
from .errors import (
    ConfigurationError,
    CSRFError,
    ReauthenticationRequired,
    SessionLimitReached,
    StoreError,
)
from .events import Events
from .legacy import LegacyReader, adopt, forget_old, read_old, readers_of, settled
from .remember import RememberMe
from .stores.cookie import CookieStore
from .telemetry import OpenTelemetry
from .typing import Store

__all__ = ["CSRFMiddleware", "SessionMiddleware", "get_session", "user_sessions"]

logger = logging.getLogger("sessionware")

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
ENVIRON_KEY = "sessionware.session"


def _status_code(status: str) -> int:
    try:
        return int(status.split(" ", 1)[0])
    except ValueError:
        return 500


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def store_unavailable(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The default response when the session store fails: ``503 Service Unavailable``."""
    body = STORE_DOWN_TEXT.encode()
    start_response(
        "503 Service Unavailable",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Retry-After", "5"),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


class SessionMiddleware(CheckedArguments):
    """Sessions for WSGI apps: :class:`sessionware.SessionMiddleware`'s semantics, exactly.

    The same engine drives both adapters, so every rule -- lazy writes,
    renew / drop / ignore, expiry, key rotation, compare-and-set writes,
    ``Vary: Cookie``, no save on a 5xx, failing closed with a 503 -- is the
    same. The session is at ``environ["sessionware.session"]`` and from
    :func:`get_session`. Server-side stores are called synchronously (WSGI
    servers run requests in threads or processes).

    Options: the same as :class:`sessionware.SessionMiddleware` (see there),
    ``dbsc``, ``events``, ``telemetry``, ``remember``, ``clear_site_data`` and
    ``anomaly`` included, except that ``store`` must offer synchronous methods
    (every built-in store does), ``store_error_app`` is a WSGI app, ``legacy=``
    readers are called synchronously, and there is no ``websocket_recheck``
    (WSGI has no websockets).

    Example::

        app.wsgi_app = SessionMiddleware(app.wsgi_app, secret_key_base=secret, store=SQLiteStore("s.db"))
    """

    _renamed = STARLETTE_NAMES

    def __init__(
        self,
        app: WSGIApp,
        *,
        secret_key_base: SecretInput,
        store: CookieStore | Store | None = None,
        cookie_name: str | None = None,
        expiry: Expiry | str | None = None,
        secure: Secure = "auto",
        same_site: str = "lax",
        path: str = "/",
        domain: str | None = None,
        partitioned: bool = False,
        persistent: bool = False,
        store_error_app: WSGIApp = store_unavailable,
        cookie_cache: int = 1024,
        record_ip: bool = False,
        max_sessions_per_user: int | None = None,
        on_session_limit: str = "evict_oldest",
        dbsc: DBSC | None = None,
        events: Events | None = None,
        telemetry: OpenTelemetry | None = None,
        remember: RememberMe | None = None,
        clear_site_data: bool = False,
        anomaly: AnomalyHook | None = None,
        clock: Callable[[], float] = time.time,
        legacy: LegacyReader | Sequence[LegacyReader] | None = None,
    ) -> None:
        self.app = app
        self._readers = readers_of(legacy, "SessionMiddleware")
        self.engine = build_engine(
            secret_key_base=secret_key_base,
            store=store,
            cookie_name=cookie_name,
            expiry=expiry,
            secure=secure,
            same_site=same_site,
            path=path,
            domain=domain,
            partitioned=partitioned,
            persistent=persistent,
            cookie_cache=cookie_cache,
            record_ip=record_ip,
            max_sessions_per_user=max_sessions_per_user,
            on_session_limit=on_session_limit,
            dbsc=dbsc,
            events=events,
            telemetry=telemetry,
            remember=remember,
            clear_site_data=clear_site_data,
            anomaly=anomaly,
        )
        self.store_error_app = store_error_app
        self.clock = clock

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        engine = self.engine
        now = int(self.clock())
        https = environ.get("wsgi.url_scheme") == "https"
        try:
            session = open_session(engine, environ.get("HTTP_COOKIE"), now, https)
            session._scope = environ
            if self._readers and session._origin is None and environ.get("HTTP_COOKIE"):
                found = read_old(self._readers, environ["HTTP_COOKIE"], now)
                if found is not None:
                    adopt(session, found, engine.cookie.name_for(https))
        except StoreError as exc:
            return self._store_failed(environ, start_response, exc)
        dbsc = engine.dbsc
        if dbsc is not None:
            path = environ.get("PATH_INFO", "/") or "/"
            try:
                answer = self._dbsc_answer(environ, session, path, https, now)
            except StoreError as exc:
                return self._store_failed(environ, start_response, exc)
            if answer is not None:
                start_response(status_line(answer.status), with_length(answer))
                return [answer.body]
        environ[ENVIRON_KEY] = session
        if engine.extras:
            try:
                extras_opened(engine, session, environ.get("HTTP_COOKIE"), now, https)
            except StoreError as exc:
                return self._store_failed(environ, start_response, exc)
        state: dict[str, Any] = {"replaced": None, "started": False}

        def start_with_session(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            state["started"] = True
            if _status_code(status) >= 500 and session._store_error is not None:
                # The app made a 500 of a store failure: the 503 instead.
                state["replaced"] = self._store_failed(environ, start_response, session._store_error)
                return lambda data: None
            try:
                set_cookie = close_session(engine, session, _status_code(status), now, https)
            except StoreError as exc:
                state["replaced"] = self._store_failed(environ, start_response, exc)
                return lambda data: None
            except SessionLimitReached as exc:
                state["replaced"] = _plain(start_response, "409 Conflict", str(exc))
                if engine.extras:
                    extras_closed(engine, session, None, environ, now, https, saved=False)
                return lambda data: None
            if set_cookie is not None or session._accessed:
                headers = with_session_headers(headers, set_cookie, session._accessed)
            if engine.extras:
                try:
                    headers = [*headers, *extras_closed(engine, session, set_cookie, environ, now, https)]
                except StoreError as exc:
                    state["replaced"] = self._store_failed(environ, start_response, exc)
                    return lambda data: None
            if dbsc is not None:
                try:
                    root = environ.get("SCRIPT_NAME", "")
                    headers = [*headers, *after_close_sync(engine, session, set_cookie, root, https, now)]
                except StoreError as exc:
                    state["replaced"] = self._store_failed(environ, start_response, exc)
                    return lambda data: None
            if (session._also_set or session._legacy is not None) and settled(session, _status_code(status)):
                # Saved (or logged out): the old library's cookie of another name is expired,
                # and its record deleted.
                headers = [*headers, *(("Set-Cookie", cookie) for cookie in session._also_set)]
                forget_old(session)
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        try:
            result = self.app(environ, start_with_session)
        except StoreError as exc:
            return self._store_failed(environ, start_response, exc)
        except ReauthenticationRequired as exc:
            return _plain(start_response, "401 Unauthorized", str(exc))
        if state["started"] and state["replaced"] is None:
            return result  # as the app made it: the server may use wsgi.file_wrapper's fast path
        return _Response(result, state)  # started later (a generator), or replaced by an error

    def _dbsc_answer(
        self, environ: Environ, session: Session, path: str, https: bool, now: int
    ) -> Answer | None:
        """DBSC's own answer to this request (an endpoint, or a refusal), or None to run the app."""
        engine = self.engine
        dbsc: Runtime | None = engine.dbsc
        assert dbsc is not None
        if dbsc.is_endpoint(path):
            return endpoint_sync(engine, session, wsgi_request(environ, https), now)
        return dbsc.refusal(session, path, environ.get("SCRIPT_NAME", ""), environ.get("HTTP_COOKIE"), now)

    def _store_failed(
        self, environ: Environ, start_response: StartResponse, exc: StoreError
    ) -> Iterable[bytes]:
        log_store_failure(exc, "the store error app")
        environ["sessionware.error"] = exc
        return self.store_error_app(environ, start_response)


class _Response:
    """The app's response, unless a store failure at ``start_response`` replaced it."""

    def __init__(self, result: Iterable[bytes], state: dict[str, Any]) -> None:
        self._result = result
        self._state = state

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self._result)
        for chunk in iterator:
            replaced = self._state["replaced"]
            if replaced is not None:  # a store failure at start_response: the app's body is dropped
                yield from replaced
                return
            yield chunk
        if self._state["replaced"] is not None:
            yield from self._state["replaced"]

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


def _sync_store(engine: Engine) -> Store | None:
    """The engine's server-side store, called synchronously (a WSGI app's stores are)."""
    return engine.registry_store  # type: ignore[return-value]


def open_session(engine: Engine, cookie_header: str | None, now: int, https: bool = False) -> Session:
    """Open a session synchronously (WSGI, Flask)."""
    opened = _open(engine, cookie_header, now, https)
    return opened if isinstance(opened, Session) else run_sync(opened, _sync_store(engine))


def close_session(engine: Engine, session: Session, status: int, now: int, https: bool) -> str | None:
    """Close a session synchronously; the ``Set-Cookie`` value to send, if any."""
    closed = _close(engine, session, status, now, https)
    if closed is None or isinstance(closed, str):
        return closed
    return run_sync(closed, _sync_store(engine))


def extras_opened(engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool) -> None:
    """The anomaly hook and remember-me after a session is opened (synchronously)."""
    pending = after_open(engine, session, cookie_header, now, https)
    if pending is not None:
        run_sync(pending, _sync_store(engine))


def extras_closed(
    engine: Engine,
    session: Session,
    set_cookie: str | None,
    environ: Environ,
    now: int,
    https: bool,
    *,
    saved: bool = True,
) -> list[tuple[str, str]]:
    """Remember-me's cookies and Clear-Site-Data after a session is saved; the events published."""
    added: list[tuple[str, str]] = []
    if saved:
        made = after_close(engine, session, environ.get("HTTP_COOKIE"), now, https)
        added = made if isinstance(made, list) else run_sync(made, _sync_store(engine))
    publish_sync(engine, events_of(engine, session, set_cookie, environ.get("PATH_INFO"), now, saved=saved))
    return added


def with_session_headers(
    headers: list[tuple[str, str]], set_cookie: str | None, vary: bool
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    vary_done = not vary
    for name, value in headers:
        lowered = name.lower()
        if set_cookie is not None and lowered == "cache-control":
            continue
        if lowered == "vary" and not vary_done:
            tokens = {token.strip().lower() for token in value.split(",")}
            if "cookie" not in tokens and "*" not in tokens:
                value = value + ", Cookie"
            vary_done = True
        out.append((name, value))
    if not vary_done:
        out.append(("Vary", "Cookie"))
    if set_cookie is not None:
        out.append(("Set-Cookie", set_cookie))
        out.append(("Cache-Control", "no-store"))
    return out


def get_session(environ: Environ) -> Session:
    """The session of a WSGI request (its environ, or a request object with ``.environ``)."""
    from .asgi import get_session as find

    return find(getattr(environ, "environ", environ))


def user_sessions(environ: Environ) -> UserSessions:
    """List and revoke sessions of any user (synchronously), through this request's store."""
    session = get_session(environ)
    engine = engine_of(session)
    users = UserSessions(engine, _sync_store(engine), clock=lambda: session._now)
    users.request_session = session
    return users


class _CSRFCheck:
    """The CSRF check of one WSGI request: what :class:`CSRFMiddleware` and the Flask extension run.

    Options are :class:`sessionware.CSRFMiddleware`'s, with ``exempt`` a
    function of the WSGI environ.
    """

    def __init__(
        self,
        *,
        trusted_origins: Iterable[str] = (),
        trust_same_site: bool = False,
        exempt: Iterable[str] | Callable[[Environ], bool] = (),
        max_body_size: int = 1024 * 1024,
    ) -> None:
        self.rules = _csrf.Rules(
            trusted_origins=trusted_origins,
            trust_same_site=trust_same_site,
            exempt=exempt,
            max_body_size=max_body_size,
        )

    def applies(self, environ: Environ) -> bool:
        """Whether this request is checked: an unsafe method on a path not exempt."""
        return self.rules.applies(
            environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), environ
        )

    def refusal(self, environ: Environ, session: Session) -> str | None:
        """Why this request must be refused (logged, never with the token), or None.

        The headers first (they can only refuse), then the token from the
        ``x-csrf-token`` header or, for a form, its ``_csrf_token`` field (the
        body is put back for the app).
        """
        host = (
            environ.get("HTTP_HOST")
            or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        )
        reason = self.rules.header_refusal(
            scheme=environ.get("wsgi.url_scheme", "http"),
            host=host,
            sec_fetch_site=environ.get("HTTP_SEC_FETCH_SITE"),
            origin=environ.get("HTTP_ORIGIN"),
            referer=environ.get("HTTP_REFERER"),
        )
        token = environ.get("HTTP_X_CSRF_TOKEN")
        if reason is None and token is None:
            content_type = environ.get("CONTENT_TYPE", "")
            kind = content_type.split(";", 1)[0].strip().lower().encode()
            if kind in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
                limit = self.rules.max_body_size
                body = _read_wsgi_body(environ, limit)
                if body is None:
                    reason = f"form body over {limit} bytes without the header"
                else:
                    from .csrf import _form_token

                    token = _form_token(kind, content_type.encode("latin-1"), body)
        if reason is None:
            try:
                from .csrf import verify_csrf_token

                verify_csrf_token(session, token)
            except CSRFError as exc:
                reason = exc.reason
        if reason is not None:
            method = environ.get("REQUEST_METHOD", "GET").upper()
            path = environ.get("PATH_INFO", "/")
            logger.warning("sessionware refused a %s %s: CSRF check failed (%s)", method, path, reason)
            if session._observed():
                session._note("csrf_failure", session._current_meta().get("uid"), reason)
        return reason


class CSRFMiddleware(CheckedArguments):
    """CSRF protection for WSGI apps: :class:`sessionware.CSRFMiddleware`'s rules, exactly.

    Options are the same (``exempt`` may be a function of the WSGI environ;
    ``error_app`` is a WSGI app). Wrap the app with it *inside*
    :class:`SessionMiddleware`::

        app.wsgi_app = SessionMiddleware(CSRFMiddleware(app.wsgi_app), secret_key_base=secret)
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        trusted_origins: Iterable[str] = (),
        trust_same_site: bool = False,
        exempt: Iterable[str] | Callable[[Environ], bool] = (),
        max_body_size: int = 1024 * 1024,
        error_app: WSGIApp | None = None,
    ) -> None:
        self.app = app
        self.check = _CSRFCheck(
            trusted_origins=trusted_origins,
            trust_same_site=trust_same_site,
            exempt=exempt,
            max_body_size=max_body_size,
        )
        self.error_app = error_app or _csrf_rejected

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.check.applies(environ):
            return self.app(environ, start_response)
        if ENVIRON_KEY not in environ:
            raise ConfigurationError("CSRFMiddleware needs SessionMiddleware around it")
        reason = self.check.refusal(environ, environ[ENVIRON_KEY])
        if reason is not None:
            environ["sessionware.csrf_error"] = CSRFError(reason)
            return self.error_app(environ, start_response)
        return self.app(environ, start_response)


def _csrf_rejected(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _plain(start_response, "403 Forbidden", str(environ["sessionware.csrf_error"]))


def _read_wsgi_body(environ: Environ, limit: int) -> bytes | None:
    """The request body (if within ``limit``), put back so the app reads it too."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    if length > limit:
        return None
    if length:
        body: bytes = stream.read(length)
    else:  # no length given (chunked): read up to the limit
        body = stream.read(limit + 1)
        if len(body) > limit:
            environ["wsgi.input"] = io.BytesIO(body + stream.read())
            return None
    environ["wsgi.input"] = io.BytesIO(body)
    return body
