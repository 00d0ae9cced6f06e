"""Lifecycle events: what happened to a session, for the app's own hooks.

A middleware given ``events=Events(on_log_in=..., ...)`` calls each hook with a
:class:`SessionEvent` once the response's session work is done (a log-in's
event after its record was written). Hooks may be plain functions or
coroutine functions; one that raises is logged (logger ``"sessionware"``)
and never breaks the request. With no hooks set the middleware does no work
for them.

An event never holds the session ID, a cookie value or a secret: only the
user ID, the session's *handle* (as listings show it: not a credential), a
reason, the request path and the time.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

__all__ = ["EVENT_KINDS", "INVALID_COOKIE_REASONS", "EventKind", "Events", "Hook", "SessionEvent"]

logger = logging.getLogger("sessionware")

EventKind = Literal[
    "log_in",
    "log_out",
    "renew",
    "revoke",
    "expire",
    "invalid_cookie",
    "csrf_failure",
    "remember_theft",
    "session_limit",
]
#: Every event kind, in the order :class:`Events` lists its hooks (``on_<kind>``).
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

#: The reasons an ``invalid_cookie`` event gives.
INVALID_COOKIE_REASONS = ("bad signature", "unknown key", "expired", "revoked", "oversize", "malformed")


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened to a session. Times are unix seconds.

    ``reason`` depends on the kind: ``"password"``, ``"remember"`` or the
    app's own word for a log-in (how it happened); ``"drop"`` or
    ``"log_out"`` for a log-out; ``"renew"``, ``"reauthenticated"`` or
    ``"key rotation"`` for a renewal; ``"one"`` or ``"all"`` for a revocation;
    ``"idle"`` or ``"absolute"`` for an expiry; one of
    :data:`INVALID_COOKIE_REASONS` for an invalid cookie (``cookie`` says
    which: the session's or the remember-me cookie); the CSRF check's reason;
    ``"replayed"`` for a remember-me theft; ``"reject"`` or ``"evict"`` for a
    session limit.
    """

    kind: EventKind
    time: int
    user_id: str | int | None = None
    handle: str | None = None  #: as :class:`~sessionware.SessionInfo` shows it
    reason: str | None = None
    path: str | None = None  #: the request's path, when there was a request
    cookie: str | None = None  #: the cookie's name, for ``invalid_cookie``
    count: int = 1  #: sessions ended, for a ``revoke`` of ``"all"``


Hook = Callable[[SessionEvent], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Events:
    """The app's hooks for lifecycle events, one per kind; each is optional.

    Each hook receives a :class:`SessionEvent`, may be a function or a
    coroutine function, and runs after the response's session work; one that
    raises is logged and the request goes on. Under WSGI a coroutine hook is
    run to completion with :func:`asyncio.run`.

    Options:
        on_log_in: A session logged in (``reason``: how -- ``"password"``,
            ``"remember"``, or what the app passed to ``log_in(how=...)``).
        on_log_out: A logged-in session logged out or was dropped.
        on_renew: A session got a new ID without a log-in (``renew()``,
            ``reauthenticated()``, a re-filing after a key rotation).
        on_revoke: Sessions were revoked through ``user_sessions``: one
            (``reason="one"``, with its handle) or all (``"all"``, ``count``).
        on_expire: A session was found past its idle or absolute deadline.
        on_invalid_cookie: A session or remember-me cookie was refused.
        on_csrf_failure: The CSRF check refused a request.
        on_remember_theft: A remember-me token that had already been rotated
            came back: every session and token of the user was revoked.
        on_session_limit: ``max_sessions_per_user`` refused a log-in or
            evicted older sessions.

    Example::

        def audit(event: SessionEvent) -> None:
            log.info("%s user=%s reason=%s", event.kind, event.user_id, event.reason)

        SessionMiddleware(app, secret_key_base=secret, events=Events(on_log_in=audit))
    """

    on_log_in: Hook | None = None
    on_log_out: Hook | None = None
    on_renew: Hook | None = None
    on_revoke: Hook | None = None
    on_expire: Hook | None = None
    on_invalid_cookie: Hook | None = None
    on_csrf_failure: Hook | None = None
    on_remember_theft: Hook | None = None
    on_session_limit: Hook | None = None

    def __post_init__(self) -> None:
        from .errors import ConfigurationError

        for field in fields(self):
            hook = getattr(self, field.name)
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"Events expects {field.name} to be callable or None, got {hook!r}")

    def hook(self, kind: str) -> Hook | None:
        hook: Hook | None = getattr(self, "on_" + kind)
        return hook


def _failed(hook: object, event: SessionEvent) -> None:
    logger.exception("sessionware: the %s hook %r raised; the request goes on", event.kind, hook)


def emit_sync(events: Events | None, batch: list[SessionEvent]) -> None:
    """Call the hooks for ``batch`` (WSGI, Flask, scripts): coroutines run to completion."""
    if events is None:
        return
    for event in batch:
        hook = events.hook(event.kind)
        if hook is None:
            continue
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                asyncio.run(_awaited(result))
        except Exception:
            _failed(hook, event)


async def _awaited(result: Awaitable[Any]) -> None:
    await result


async def emit_async(events: Events | None, batch: list[SessionEvent]) -> None:
    """Call the hooks for ``batch`` (ASGI): coroutines are awaited."""
    if events is None:
        return
    for event in batch:
        hook = events.hook(event.kind)
        if hook is None:
            continue
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            _failed(hook, event)
