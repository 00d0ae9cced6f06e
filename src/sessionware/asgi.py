"""The ASGI adapter: Starlette, FastAPI, Litestar, Quart or any ASGI app."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._arguments import STARLETTE_NAMES, CheckedArguments
from ._closing import close_session
from ._config import STORE_DOWN_TEXT, build_engine, log_store_failure
from ._cookies import Secure, find_cookie
from ._dbsc_adapt import asgi_request, relative
from ._dbsc_flow import Answer
from ._engine import engine_of
from ._expiry import Expiry
from ._extras import aafter_open, after_close, events_of, publish_async
from ._keys import SecretInput
from ._loading import open_session
from ._registry import AsyncUserSessions
from ._session import Session
from ._steps import run_async, run_inline
from ._websocket import check_recheck, watched
from .anomaly import AnomalyHook
from .dbsc import DBSC
from .errors import (
    ReauthenticationRequired,
    SessionError,
    SessionLimitReached,
    StoreError,
)
from .events import Events, SessionEvent
from .legacy import LegacyReader, adopt, aforget_old, aread_old, readers_of, settled
from .remember import RememberMe
from .stores._thread import as_async
from .stores.cookie import CookieStore
from .telemetry import Instrumented, OpenTelemetry
from .typing import ASGIApp, AsyncStore, Message, Receive, Scope, Send, Store

__all__ = ["SessionMiddleware", "get_session", "store_unavailable", "user_sessions"]

logger = logging.getLogger("sessionware")


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def store_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """The default response when the session store fails: ``503 Service Unavailable``."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1011})
        return
    body = STORE_DOWN_TEXT.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"5"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SessionMiddleware(CheckedArguments):
    """Load the session before the app runs; write it back only if something happened.

    The session is at ``scope["session"]``, so ``request.session`` works
    unchanged in Starlette and FastAPI; :func:`get_session` finds it too. A
    request without a session cookie whose session is not written costs no
    store call and gets no ``Set-Cookie``. A cookie is sent at most once per
    response, and only to write, renew, refresh (a due touch, or a cookie made
    under an older secret) or drop the session. Responses that read the
    session get ``Vary: Cookie``; responses that set the cookie get
    ``Cache-Control: no-store`` (replacing the app's); nothing is saved when
    the response is a 5xx. Websocket connections get the session read-only.

    A cookie that is tampered with, truncated, expired, made under a removed
    secret, or over 4096 bytes gives an empty session and one debug log line
    (logger ``"sessionware"``) that never includes the value. When the store
    fails -- loading, saving, or a call the app makes through
    :func:`user_sessions` -- the request is answered by ``store_error_app``
    (a 503) unless the response has already started.

    Options:
        secret_key_base: One secret (str or bytes, at least 32 bytes) or a
            list of them. The first signs and encrypts; all verify, so a new
            secret goes first and the old one stays listed until its cookies
            have been re-issued (which happens on their next response).
            Required. Make one with ``python -m sessionware gen-secret``.
        store: Where sessions live. Defaults to ``CookieStore()`` (encrypted
            cookie, no server). Server-side: ``MemoryStore()``,
            ``SQLiteStore(path)`` or any :class:`~sessionware.typing.Store` or
            :class:`~sessionware.typing.AsyncStore`; the cookie then carries
            only a signed random 256-bit ID.
        cookie_name: The cookie's name. By default it is ``__Host-session``
            on https requests -- a prefix browsers enforce: the cookie was set
            with ``Secure``, ``Path=/`` and no ``Domain``, so a sibling
            subdomain cannot plant or overwrite it -- and ``session`` on plain
            http, where browsers refuse prefixed cookies (development servers,
            test clients). ``__Secure-session`` replaces ``__Host-session``
            when ``domain`` or a narrower ``path`` is set; with
            ``secure=False`` the name is always ``session``, with
            ``secure=True`` always prefixed. A request reads only the name of
            its own scheme. Give a name to use that one everywhere; a
            ``__Host-`` name requires ``path="/"`` and no ``domain``, and
            ``__Host-`` and ``__Secure-`` names force ``Secure``.
        expiry: An :class:`~sessionware.Expiry`, or a preset name: ``"aal1"``,
            ``"aal2"`` or ``"aal3"``. Defaults to ``"aal2"``: 30 minutes idle,
            12 hours absolute (NIST SP 800-63B AAL2) -- except with a
            :class:`~sessionware.phoenix.PhoenixCookieStore`, whose default
            has no idle timeout (see there).
        secure: ``"auto"`` (default) marks the cookie ``Secure`` on https
            requests only, so plain-http development servers and test clients
            keep working; behind a TLS-terminating proxy make sure the app sees
            ``https`` (e.g. uvicorn ``--proxy-headers``) or pass ``True``.
            ``True`` always sets ``Secure``; ``False`` never does.
        same_site: ``"lax"`` (default), ``"strict"`` or ``"none"`` (requires
            ``secure=True``).
        path: Cookie ``Path``. Defaults to ``"/"``.
        domain: Cookie ``Domain``. Defaults to None: the cookie goes back only
            to the host that set it, which is safest.
        partitioned: Add ``Partitioned`` (CHIPS; requires ``secure=True``).
            Defaults to ``False``.
        persistent: ``False`` (default) sends a browser-session cookie (no
            ``Max-Age``), which the browser forgets when it closes. ``True``
            adds ``Max-Age`` up to the session's deadline ("remember me").
            Either way the server enforces expiry itself.
        store_error_app: The ASGI app that answers when the store fails
            (the exception is at ``scope["sessionware.error"]``). Defaults to
            :func:`store_unavailable`, a plain ``503``. The request never
            proceeds as anonymous and the failure is logged.
        cookie_cache: How many recently verified cookie values to remember, with
            what they decoded to, so a browser re-sending the same cookie costs no
            decryption. Only values that verified are kept; expiry is still
            checked on every request. Defaults to 1024; ``0`` turns it off.
        record_ip: Record the client's IP address when a session logs in, to
            show in the user's session list (the user agent is always
            recorded). Defaults to ``False``: an IP address is personal data,
            so keeping it is the app's decision.
        max_sessions_per_user: At most this many live sessions per user; None
            (default) for no limit. Needs a per-user registry (a server-side
            store, or ``CookieStore(revocation=...)``).
        on_session_limit: What a log-in beyond the limit does:
            ``"evict_oldest"`` (default) ends the user's least recently active
            sessions; ``"reject"`` refuses the log-in with a 409
            (:class:`~sessionware.SessionLimitReached`) and creates nothing.
        dbsc: A :class:`~sessionware.DBSC` to bind logged-in sessions to the
            browser's device key (Device Bound Session Credentials), or None
            (default). Needs a server-side store, or a ``CookieStore`` with a
            revocation store. See ``docs/dbsc.md``.
        events: A :class:`~sessionware.events.Events` of the app's hooks for
            log-ins, log-outs, revocations, refused cookies and the rest, or
            None (default: no hooks, no cost). See ``docs/events.md``.
        telemetry: A :class:`~sessionware.telemetry.OpenTelemetry` to record
            metrics and store-call spans (``otel`` extra), or None (default).
        remember: A :class:`~sessionware.RememberMe` for remember-me cookies
            (``session.log_in(user_id, remember=True)``), or None (default).
            Needs a store with a per-user registry. See ``docs/remember-me.md``.
        clear_site_data: ``True`` sends ``Clear-Site-Data: "cookies",
            "storage"`` with every log-out (``session.log_out()``; its own
            ``clear_site_data`` argument decides per call). Defaults to ``False``.
        anomaly: A function ``(session, changes) -> "allow" | "reauth" |
            "drop"`` called when a logged-in session's request comes from
            another network, browser family or language than its log-in
            (:mod:`sessionware.anomaly`; ``default_policy`` is one), or None
            (default: nothing recorded or compared).
        websocket_recheck: Seconds between checks that a websocket's session
            still stands (not revoked, logged out or expired); when it no
            longer does, the socket is closed with code ``4401``. Defaults to
            30; None turns the checks off. Needs asyncio (skipped under trio).
        clock: A function returning unix time in seconds. Defaults to
            :func:`time.time`; tests pass a fake to move time.
        legacy: A reader of another library's live sessions, or a list of
            them (:mod:`sessionware.legacy`: Flask-Session, starsessions,
            Django), so that switching logs nobody out. A request with no
            valid sessionware cookie but one a reader knows gets that old
            session (and its log-in), re-issued in sessionware's format.
            Defaults to None.

    Example::

        app.add_middleware(
            SessionMiddleware,
            secret_key_base=os.environ["SECRET_KEY_BASE"],
            store=SQLiteStore("sessions.db"),
        )
    """

    _renamed = STARLETTE_NAMES

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key_base: SecretInput,
        store: CookieStore | Store | AsyncStore | None = None,
        cookie_name: str | None = None,
        expiry: Expiry | str | None = None,
        secure: Secure = "auto",
        same_site: str = "lax",
        path: str = "/",
        domain: str | None = None,
        partitioned: bool = False,
        persistent: bool = False,
        store_error_app: ASGIApp = store_unavailable,
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
        websocket_recheck: float | None = 30,
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
        self._recheck = check_recheck(websocket_recheck)
        store = self.engine.store
        self.store = store
        steps_store = store.revocation if isinstance(store, CookieStore) else store
        self._async_store = None if steps_store is None else as_async(steps_store)
        if self._async_store is not None and self.engine.telemetry is not None:
            self._async_store = Instrumented(self._async_store, self.engine.telemetry, is_async=True)
        self.engine.async_store = self._async_store
        #: The store's face that answers on the event loop without waiting, if it has one.
        self._inline = getattr(self._async_store, "inline", None)
        self._store_error_app = store_error_app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        now = int(self._clock())
        engine = self.engine
        store = self._async_store
        https = scope.get("scheme") in ("https", "wss")
        cookie_header = _cookie_header(scope["headers"])
        try:
            opened = open_session(engine, cookie_header, now, https, self._inline)
            if isinstance(opened, Session):
                session = opened
            else:
                done, result = run_inline(opened, store)
                session = result if done else await run_async(result, store)
            if self._readers and session._origin is None:
                await self._read_old(session, scope, https, now)
        except StoreError as exc:
            await self._store_failed(scope, receive, send, exc)
            return
        if session._had_cookie and self._legacy is not None and session._origin is None:
            self._import_legacy(session, scope, https)
        dbsc = engine.dbsc
        if dbsc is not None:
            root = scope.get("root_path", "")
            path = relative(scope.get("path", "/"), root)
            if kind == "http" and dbsc.is_endpoint(path):
                await self._dbsc_endpoint(
                    scope, receive, send, session, path, root, https, cookie_header, now
                )
                return
            refused = dbsc.refusal(session, path, root, cookie_header, now)
            if refused is not None:
                if kind == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _answer(send, refused)
                return
        scope["session"] = session
        session._scope = scope
        if kind == "websocket":
            session._read_only = True
            try:
                if self._recheck is None or session._origin is None:
                    await self.app(scope, receive, send)
                else:
                    await watched(
                        self.app, scope, receive, send, engine, session, store, self._recheck, self._clock
                    )
            finally:
                session._scope = None
            return
        if engine.extras:
            try:
                pending = await aafter_open(engine, session, cookie_header, now, https)
                if pending is not None:
                    await run_async(pending, store)
            except StoreError as exc:
                await self._store_failed(scope, receive, send, exc)
                return
        started = failed = False
        #: The request's events, published once the response is sent: a slow hook does not
        #: hold the body back.
        unpublished: list[SessionEvent] | None = None

        async def send_with_session(message: Message) -> None:
            nonlocal started, failed, unpublished
            if failed:
                return  # a store failure already answered this request
            if message["type"] == "http.response.start":
                started = True
                if message["status"] >= 500 and session._store_error is not None:
                    # The app made a 500 of a store failure (Starlette's ServerErrorMiddleware
                    # does when this middleware wraps the app from outside): the 503 instead.
                    failed = True
                    await self._store_failed(scope, receive, send, session._store_error)
                    return
                closing = close_session(engine, session, message["status"], now, https)
                closed: str | None
                if closing is None or isinstance(closing, str):
                    closed = closing
                else:
                    try:
                        done, result = run_inline(closing, store)
                        closed = result if done else await run_async(result, store)
                    except StoreError as exc:
                        failed = True
                        await self._store_failed(scope, receive, send, exc)
                        return
                    except SessionLimitReached as exc:
                        failed = True
                        await _plain(send, exc.status_code, str(exc))
                        if engine.extras:
                            batch = events_of(engine, session, None, scope.get("path"), now, saved=False)
                            await publish_async(engine, batch)
                        return
                if closed is not None or session._accessed:
                    message["headers"] = _with_session_headers(
                        message.get("headers", ()), closed, session._accessed
                    )
                if dbsc is not None:
                    try:
                        extra = await self._dbsc_headers(session, closed, scope, https, now)
                    except StoreError as exc:
                        failed = True
                        await self._store_failed(scope, receive, send, exc)
                        return
                    if extra:
                        message["headers"] = [*message.get("headers", ()), *extra]
                if engine.extras:
                    try:
                        added = after_close(engine, session, cookie_header, now, https)
                        if not isinstance(added, list):
                            added = await run_async(added, store)
                    except StoreError as exc:
                        failed = True
                        await self._store_failed(scope, receive, send, exc)
                        return
                    if added:
                        encoded = [(name.lower().encode(), value.encode("latin-1")) for name, value in added]
                        message["headers"] = [*message.get("headers", ()), *encoded]
                    unpublished = events_of(engine, session, closed, scope.get("path"), now)
                if session._also_set or session._legacy is not None:
                    await _settle_old(session, message)
                await send(message)
                return
            await send(message)
            if (
                unpublished is not None
                and message["type"] == "http.response.body"
                and not message.get("more_body")
            ):
                batch, unpublished = unpublished, None
                await publish_async(engine, batch)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreError as exc:
            # The app's own store call failed (revoking sessions, say): answer as for
            # ours, unless the response is already under way.
            if failed:
                return  # answered with the 503 already
            if started:
                raise
            await self._store_failed(scope, receive, send, exc)
        except ReauthenticationRequired as exc:
            if started:
                raise
            await _plain(send, 401, str(exc))
        finally:
            # scope["session"] is the session and the session holds the scope: a cycle
            # only the garbage collector would free. Broken here (the request is over;
            # a session used later sees no request, like one made outside a request).
            session._scope = None
            if unpublished:  # the app ended without finishing its response body
                await publish_async(engine, unpublished)

    #: Reads a session cookie another library wrote (see ``sessionware.starlette``):
    #: given the cookie's value, the session data, or None. Asked only when the
    #: cookie is not a sessionware cookie; data it returns is re-issued in
    #: sessionware's format on this response.
    _legacy: Callable[[str], dict[str, Any] | None] | None = None

    def _import_legacy(self, session: Session, scope: Scope, https: bool) -> None:
        assert self._legacy is not None
        header = _cookie_header(scope["headers"])
        value, count = find_cookie(header or "", self.engine.cookie.name_for(https))
        if value is None or count != 1:
            return
        data = self._legacy(value)
        if data:
            dict.update(session, data)
            session._dirty = True  # written back, in sessionware's format

    async def _dbsc_endpoint(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        session: Session,
        path: str,
        root: str,
        https: bool,
        cookie_header: str | None,
        now: int,
    ) -> None:
        """A DBSC registration or refresh, answered here; the app does not run."""
        engine = self.engine
        assert engine.dbsc is not None
        request = asgi_request(scope, path, root, https, cookie_header)
        try:
            answer = engine.dbsc.endpoint(engine, session, request, now)
            if not isinstance(answer, Answer):
                answer = await run_async(answer, self._async_store)
        except StoreError as exc:
            await self._store_failed(scope, receive, send, exc)
            return
        await _answer(send, answer)

    async def _dbsc_headers(
        self, session: Session, closed: str | None, scope: Scope, https: bool, now: int
    ) -> list[tuple[bytes, bytes]]:
        """DBSC's headers on an app's response: a registration offer, an expired bound cookie."""
        engine = self.engine
        dbsc = engine.dbsc
        assert dbsc is not None
        extra: list[tuple[bytes, bytes]] = []
        ended = dbsc.ended(session)
        if ended is not None:
            extra.append((b"set-cookie", ended.encode("latin-1")))
        offer = dbsc.offer(engine, session, closed, scope.get("root_path", ""), https, now)
        if offer is not None:
            header = await run_async(offer, self._async_store)
            extra.append((b"secure-session-registration", header.encode("latin-1")))
        return extra

    async def _read_old(self, session: Session, scope: Scope, https: bool, now: int) -> None:
        """Another library's session, if the request brings one (``legacy=``)."""
        header = _cookie_header(scope["headers"])
        found = None if header is None else await aread_old(self._readers, header, now)
        if found is not None:
            session._scope = scope  # log_in records the client
            adopt(session, found, self.engine.cookie.name_for(https))

    async def _store_failed(self, scope: Scope, receive: Receive, send: Send, exc: StoreError) -> None:
        log_store_failure(exc, "the store error app")
        scope["sessionware.error"] = exc
        await self._store_error_app(scope, receive, send)


async def _answer(send: Send, answer: Answer) -> None:
    """Send a response DBSC made itself."""
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _cookie_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's Cookie header; several (as HTTP/2 sends them) are joined."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"cookie":
            found = value if found is None else found + b"; " + value
    return None if found is None else found.decode("latin-1")


def _with_session_headers(
    headers: Iterable[Sequence[bytes]], set_cookie: str | None, vary: bool
) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    vary_done = not vary
    for name, value in headers:
        lowered = name.lower()
        if set_cookie is not None and lowered == b"cache-control":
            continue  # replaced by no-store below
        if lowered == b"vary" and not vary_done:
            tokens = {token.strip().lower() for token in value.split(b",")}
            if b"cookie" not in tokens and b"*" not in tokens:
                value = value + b", Cookie"
            vary_done = True
        out.append((name, value))
    if not vary_done:
        out.append((b"vary", b"Cookie"))
    if set_cookie is not None:
        out.append((b"set-cookie", set_cookie.encode("latin-1")))
        out.append((b"cache-control", b"no-store"))
    return out


def user_sessions(source: Any) -> AsyncUserSessions:
    """List and revoke sessions of any user, through the store of the middleware
    that handled this request (an ASGI request, websocket or scope).

    Example::

        users = user_sessions(request)
        for info in await users.list(session.user_id, current=session):
            ...
        await users.revoke_all(session.user_id, keep=session)  # log out everywhere else
    """
    session = get_session(source)
    users = AsyncUserSessions(engine_of(session), clock=lambda: session._now)
    users.request_session = session
    return users


def get_session(source: Any) -> Session:
    """The session of a request, websocket, ASGI scope or WSGI environ.

    Raises :class:`~sessionware.SessionError` when no sessionware middleware
    handled the request.
    """
    scope = getattr(source, "scope", source)
    try:
        session = scope["session"] if "session" in scope else scope["sessionware.session"]
    except (KeyError, TypeError):
        session = None
    if not isinstance(session, Session):
        raise SessionError(
            "no sessionware session here: add sessionware.SessionMiddleware to the app "
            "(or sessionware.wsgi.SessionMiddleware for WSGI apps)"
        )
    return session


async def _settle_old(session: Session, message: Message) -> None:
    """Once the session read from another library's is saved (or logged out): that library's
    cookie of another name is expired and its record deleted."""
    if not settled(session, message["status"]):
        return
    if session._also_set:
        cookies = [(b"set-cookie", cookie.encode("latin-1")) for cookie in session._also_set]
        message["headers"] = [*message.get("headers", ()), *cookies]
    await aforget_old(session)
