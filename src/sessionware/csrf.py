"""CSRF protection: a synchronizer token in the session, masked per render, plus
Fetch Metadata / Origin checks that can only reject.

    app.add_middleware(CSRFMiddleware)         # inside SessionMiddleware
    app.add_middleware(SessionMiddleware, secret_key_base=...)

    # in a page:  <form method="post"> {{ csrf_input(request) }} ... </form>
    # in JS:      fetch(url, {method: "POST", headers: {"x-csrf-token": token}})
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from . import _csrf
from ._arguments import CheckedArguments
from ._engine import engine_of
from ._session import Session
from .asgi import get_session
from .errors import ConfigurationError, CSRFError
from .stores.cookie import CookieStore
from .typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSRFMiddleware", "csrf_input", "csrf_token", "verify_csrf_token"]

logger = logging.getLogger("sessionware")

FIELD_NAME = "_csrf_token"
HEADER_NAME = b"x-csrf-token"
_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.IGNORECASE)
_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"


def _session_of(source: Any) -> Session:
    return source if isinstance(source, Session) else get_session(source)


def csrf_token(source: Any) -> str:
    """A freshly masked CSRF token for this request's session (a request, scope or Session).

    The first call in a session creates its secret (which writes the session,
    so a log-in form gets a token before anyone is logged in). Every call
    returns a differently masked token; all of them are valid until the secret
    changes, which :meth:`~sessionware.Session.log_in` does.
    """
    session = _session_of(source)
    secret = dict.get(session, _csrf.CSRF_SESSION_KEY)
    if not isinstance(secret, str) or len(secret) != 24:
        secret = _csrf.new_secret()
        session[_csrf.CSRF_SESSION_KEY] = secret
    return _csrf.mask(secret)


def csrf_input(source: Any) -> Any:
    """A hidden ``<input>`` carrying a fresh token, for HTML forms (Jinja2-safe markup).

    Register it for templates: ``templates.env.globals["csrf_input"] = csrf_input``,
    then write ``{{ csrf_input(request) }}`` inside each ``<form method="post">``.
    """
    html = f'<input type="hidden" name="{FIELD_NAME}" value="{csrf_token(source)}">'
    try:
        from markupsafe import Markup
    except ImportError:  # pragma: no cover - markupsafe comes with Jinja2
        return html
    return Markup(html)  # noqa: S704 - the token is base64url: nothing to escape


def verify_csrf_token(source: Any, token: str | None) -> None:
    """Raise :class:`~sessionware.CSRFError` unless ``token`` is valid for this session."""
    session = _session_of(source)
    if token is None:
        raise CSRFError("missing token")
    state = dict.get(session, _csrf.CSRF_SESSION_KEY)
    if not _csrf.valid_token(token, state) and not _valid_store_token(session, token, state):
        raise CSRFError("invalid token")


def _valid_store_token(session: Session, token: str, state: object) -> bool:
    """Whether the session's cookie store accepts ``token`` in a form of its own (Plug's host-bound one)."""
    if session._engine is None:
        return False
    engine = engine_of(session)
    if not isinstance(engine.store, CookieStore) or not isinstance(state, str):
        return False
    host = _host_of(session._scope)
    return host is not None and engine.store.valid_csrf_token(engine.keys, state, token, host)


def _host_of(scope: Any) -> str | None:
    """The request's host, without the port (Plug's ``conn.host``), from an ASGI scope or WSGI environ."""
    if not isinstance(scope, dict):
        return None
    if "headers" in scope:
        value = next((v for k, v in scope["headers"] if k == b"host"), None)
        host = None if value is None else value.decode("latin-1")
    else:
        host = scope.get("HTTP_HOST")
    if not isinstance(host, str) or not host:
        return None
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


async def csrf_rejected(scope: Scope, receive: Receive, send: Send) -> None:
    """The default answer to a refused request: ``403 Forbidden`` with a checklist."""
    error: CSRFError = scope["sessionware.csrf_error"]
    body = (str(error) + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CSRFMiddleware(CheckedArguments):
    """Refuse cross-site request forgery on every unsafe request.

    Every method except GET, HEAD, OPTIONS and TRACE must carry a valid token
    -- in the ``x-csrf-token`` header, or in the ``_csrf_token`` field of a
    form body (url-encoded or multipart), never in the query string or a cookie
    -- made by :func:`csrf_token` / :func:`csrf_input` for this session.
    Before the token, the request's own headers are checked, and can only
    refuse: ``Sec-Fetch-Site: cross-site`` (and ``same-site``, unless
    trusted, and ``none``), or an ``Origin`` / ``Referer`` that is neither the
    request's own origin nor a trusted one. A refused request gets a 403 and
    one warning log line with the reason, never the token. Install it *inside*
    :class:`~sessionware.SessionMiddleware` (with Starlette, add it first).

    Options:
        trusted_origins: Other origins allowed to send unsafe requests, as
            ``"https://app.example.com"`` (whatever ``Sec-Fetch-Site`` says of
            them: a sibling subdomain arrives as ``same-site``, another site as
            ``cross-site``). The request's own origin (its scheme and ``Host``)
            is always allowed. The token is still required. Defaults to none.
        trust_same_site: Accept any request the browser marks
            ``Sec-Fetch-Site: same-site`` (every sibling subdomain, whatever its
            origin). Browsers too old to send ``Sec-Fetch-Site`` are then
            judged by ``Origin`` alone, so list siblings they use in
            ``trusted_origins``. Defaults to ``False``.
        exempt: Paths that skip the check (webhooks, say): a path ending in
            ``/`` exempts everything under it, others match exactly; or a
            function of the ASGI scope returning True to exempt. Defaults to none.
        max_body_size: The largest form body read to find the token (it is
            then passed on to the app unchanged). Larger forms must send the
            header. Defaults to 1 MiB.
        error_app: The ASGI app that answers a refused request; the
            :class:`~sessionware.CSRFError` is at ``scope["sessionware.csrf_error"]``.
            Defaults to a plain 403.

    Example::

        app.add_middleware(CSRFMiddleware, trusted_origins=["https://admin.example.com"])
        app.add_middleware(SessionMiddleware, secret_key_base=secret)
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_origins: Iterable[str] = (),
        trust_same_site: bool = False,
        exempt: Iterable[str] | Callable[[Scope], bool] = (),
        max_body_size: int = 1024 * 1024,
        error_app: ASGIApp = csrf_rejected,
    ) -> None:
        self.app = app
        self.rules = _csrf.Rules(
            trusted_origins=trusted_origins,
            trust_same_site=trust_same_site,
            exempt=exempt,
            max_body_size=max_body_size,
        )
        self.error_app = error_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.rules.applies(scope["method"], scope["path"], scope):
            await self.app(scope, receive, send)
            return
        if "session" not in scope:
            raise ConfigurationError(
                "CSRFMiddleware needs SessionMiddleware around it (add it after CSRFMiddleware)"
            )
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), value)  # the first of each, as Plug takes the first token
        reason = self.rules.header_refusal(
            scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
            host=_host(scope, headers),
            sec_fetch_site=_text(headers.get(b"sec-fetch-site")),
            origin=_text(headers.get(b"origin")),
            referer=_text(headers.get(b"referer")),
        )
        if reason is not None:
            await self._refuse(scope, receive, send, reason)
            return
        token = _text(headers.get(HEADER_NAME))
        replay: list[Message] = []
        if token is None:
            content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if content_type in (_FORM, _MULTIPART):
                limit = self.rules.max_body_size
                body, replay, complete = await _read_body(receive, limit)
                if not complete:
                    await self._refuse(
                        scope, receive, send, f"form body over {limit} bytes without the header"
                    )
                    return
                token = _form_token(content_type, headers.get(b"content-type", b""), body)
        try:
            verify_csrf_token(scope["session"], token)
        except CSRFError as exc:
            await self._refuse(scope, receive, send, exc.reason)
            return
        await self.app(scope, _replaying(replay, receive) if replay else receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        logger.warning(
            "sessionware refused a %s %s: CSRF check failed (%s)", scope["method"], scope["path"], reason
        )
        session = scope.get("session")
        if isinstance(session, Session) and session._observed():
            session._note("csrf_failure", session._current_meta().get("uid"), reason)
        scope["sessionware.csrf_error"] = CSRFError(reason)
        await self.error_app(scope, receive, send)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _host(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The ``Host`` header, or the server's address without one."""
    host = _text(headers.get(b"host"))
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return host


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, list[Message], bool]:
    """The whole body if it fits in ``limit``, and the messages to replay to the app."""
    messages: list[Message] = []
    size = 0
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), messages, True  # a disconnect: nothing more to read
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", messages, False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), messages, True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _form_token(content_type: bytes, header: bytes, body: bytes) -> str | None:
    if content_type == _FORM:
        try:
            fields = parse_qs(body.decode("latin-1"), max_num_fields=1000, keep_blank_values=True)
        except ValueError:
            return None
        values = fields.get(FIELD_NAME)
        return values[0] if values else None
    match = _BOUNDARY.search(header.decode("latin-1"))
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    for part in body.split(delimiter)[1:]:
        head, separator, value = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        disposition = head.decode("latin-1").lower()
        if f'name="{FIELD_NAME}"' in disposition and "filename=" not in disposition:
            return value.removesuffix(b"\r\n").decode("latin-1")
    return None
