"""What the adapters share for DBSC: reading a request, writing an answer, the store drivers.

Translation only; the protocol is in :mod:`._dbsc_flow`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from ._dbsc_flow import Answer, Request
from ._engine import Engine
from ._session import Session
from ._steps import run_sync

__all__ = ["after_close_sync", "asgi_request", "endpoint_sync", "relative", "status_line", "wsgi_request"]

_WANTED = {b"host": 0, b"secure-session-response": 1, b"sec-secure-session-id": 2}


def relative(path: str, root: str) -> str:
    """``path`` below the app's root path (ASGI paths include ``root_path``)."""
    return path[len(root) :] if root and path.startswith(root) else path


def asgi_request(scope: Any, path: str, root: str, https: bool, cookie_header: str | None) -> Request:
    found: list[str | None] = [None, None, None]
    headers: Iterable[Sequence[bytes]] = scope["headers"]
    for name, value in headers:
        index = _WANTED.get(bytes(name).lower())
        if index is not None:
            # Sent twice: neither is trusted (the parsers refuse the joined value).
            found[index] = value.decode("latin-1") if found[index] is None else "\x00"
    return Request(scope.get("method", "GET"), path, root, https, found[0], found[1], found[2], cookie_header)


def wsgi_request(environ: dict[str, Any], https: bool) -> Request:
    return Request(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("PATH_INFO", "/") or "/",
        environ.get("SCRIPT_NAME", ""),
        https,
        environ.get("HTTP_HOST"),
        environ.get("HTTP_SECURE_SESSION_RESPONSE"),
        environ.get("HTTP_SEC_SECURE_SESSION_ID"),
        environ.get("HTTP_COOKIE"),
    )


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def with_length(answer: Answer) -> list[tuple[str, str]]:
    return [*answer.headers, ("Content-Length", str(len(answer.body)))]


def _store_of(engine: Engine) -> Any:
    return engine.registry_store  # the server-side store, or a cookie store's revocation store


def endpoint_sync(engine: Engine, session: Session, request: Request, now: int) -> Answer:
    """A DBSC endpoint's answer, its store calls made synchronously (WSGI, Flask)."""
    assert engine.dbsc is not None
    answer = engine.dbsc.endpoint(engine, session, request, now)
    return answer if isinstance(answer, Answer) else run_sync(answer, _store_of(engine))


def after_close_sync(
    engine: Engine, session: Session, set_cookie: str | None, root: str, https: bool, now: int
) -> list[tuple[str, str]]:
    """The DBSC headers of a response once its session closed (an offer, an expired bound cookie)."""
    dbsc = engine.dbsc
    assert dbsc is not None
    extra: list[tuple[str, str]] = []
    ended = dbsc.ended(session)
    if ended is not None:
        extra.append(("Set-Cookie", ended))
    offer = dbsc.offer(engine, session, set_cookie, root, https, now)
    if offer is not None:
        extra.append(("Secure-Session-Registration", run_sync(offer, _store_of(engine))))
    return extra
