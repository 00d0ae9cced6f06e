"""Flash messages: a note for the next page, kept in the session as Phoenix keeps it.

``put_flash(request, "info", "Saved.")`` before a redirect; the next request
that calls ``get_flashes(request)`` gets ``{"info": "Saved."}`` and the
messages are gone. They live in the session under ``"phoenix_flash"`` as a map
of kind to message, so a session shared with a Phoenix app shows the same
messages on either side.
"""

from __future__ import annotations

from typing import Any

from ._session import Session
from .asgi import get_session

__all__ = ["FLASH_SESSION_KEY", "get_flashes", "put_flash"]

FLASH_SESSION_KEY = "phoenix_flash"


def _session_of(source: Any) -> Session:
    return source if isinstance(source, Session) else get_session(source)


def put_flash(source: Any, kind: str, message: str) -> None:
    """Keep ``message`` under ``kind`` (``"info"``, ``"error"``...) for the next request that reads flashes.

    One message per kind, as in Phoenix: a second ``put_flash`` of the same
    kind replaces the first. ``source`` is a request, a scope or the Session.
    """
    if not isinstance(kind, str) or not isinstance(message, str):
        raise TypeError("put_flash expects kind and message to be str")
    session = _session_of(source)
    flashes = dict.get(session, FLASH_SESSION_KEY)
    flashes = dict(flashes) if isinstance(flashes, dict) else {}
    flashes[kind] = message
    session[FLASH_SESSION_KEY] = flashes


def get_flashes(source: Any) -> dict[str, str]:
    """The messages waiting for this request, by kind; reading them consumes them."""
    session = _session_of(source)
    if not dict.__contains__(session, FLASH_SESSION_KEY):
        session._accessed = True  # the page depends on there being none
        return {}
    flashes = session.pop(FLASH_SESSION_KEY)
    if not isinstance(flashes, dict):
        return {}
    return {str(kind): str(message) for kind, message in flashes.items()}
