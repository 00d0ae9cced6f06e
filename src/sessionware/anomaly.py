"""The anomaly hook (SW-45): a logged-in session's request compared with where it logged in.

``SessionMiddleware(..., anomaly=default_policy)`` (or a function of your own)
keeps, at log-in, the client's IP network (/24 or /48), browser family and
first ``Accept-Language``; on every later request whose context differs, the
hook is called with the session and the :class:`Changes` and answers:

- ``"allow"``: go on; the new context becomes the session's (asked once per change);
- ``"reauth"``: go on, but the session counts as not recently authenticated, so
  ``session.require_recent_auth(...)`` asks for the password (a 401) until the app
  calls ``session.reauthenticated()``, which records the new context;
- ``"drop"``: the session is logged out before the app runs.

Off by default (no ``anomaly=``): nothing is recorded or compared. A hook that
raises or answers anything else is logged and counts as ``"reauth"``. The hook
may be a coroutine function (a lookup in a database, say): the ASGI middleware
awaits it; the WSGI middleware and Flask run it to completion with ``asyncio.run``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Action", "AnomalyHook", "Changes", "default_policy"]

Action = Literal["allow", "reauth", "drop"]


@dataclass(frozen=True, slots=True)
class Changes:
    """What differs between this request and the session's recorded context.

    Each field is ``(recorded, now)`` when it changed, None when it did not.
    """

    ip_prefix: tuple[str, str] | None = None  #: the client's /24 (IPv4) or /48 (IPv6) network
    user_agent: tuple[str, str] | None = None  #: the browser family ("Chrome", "Firefox", ...)
    accept_language: tuple[str, str] | None = None  #: the first language asked for


#: A function of the session and the changes answering an :data:`Action`, or a coroutine
#: function (awaited under ASGI; run with ``asyncio.run`` under WSGI and Flask).
AnomalyHook = Callable[[Any, Changes], Action | Awaitable[Action]]


def default_policy(session: Any, changes: Changes) -> Action:
    """The documented default: another browser family is another device (``"drop"``);
    another network asks for the password before sensitive actions (``"reauth"``: phones
    change networks all day, so this alone never logs anyone out); a new language only
    is allowed."""
    if changes.user_agent is not None:
        return "drop"
    if changes.ip_prefix is not None:
        return "reauth"
    return "allow"
