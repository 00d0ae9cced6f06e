"""Running the anomaly hook (see :mod:`sessionware.anomaly`) on a session just opened."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

from ._client import context_of
from ._engine import Engine, logger
from ._session import Session
from ._steps import Delete, Steps
from .anomaly import Changes

__all__ = ["acheck", "check"]

_ACTIONS = ("allow", "reauth", "drop")


def check(engine: Engine, session: Session) -> Steps[None] | None:
    """Compare the request's context with the session's; the steps of a "drop", or None.

    Synchronous (WSGI, Flask): a coroutine hook is run to completion with ``asyncio.run``.
    """
    found = _compared(session)
    if found is None:
        return None
    answer = _asked(engine, session, found[0])
    if inspect.isawaitable(answer):
        pending, settled = answer, _settled(answer)
        try:
            answer = asyncio.run(settled)
        except RuntimeError:  # called where an event loop runs: it cannot be run here
            settled.close()
            if inspect.iscoroutine(pending):
                pending.close()
            logger.exception("sessionware: the async anomaly hook could not run; taken as 'reauth'")
            answer = "reauth"
    return _decided(session, answer, found[1])


async def acheck(engine: Engine, session: Session) -> Steps[None] | None:
    """:func:`check` for ASGI: a coroutine hook is awaited (its I/O does not block the loop)."""
    found = _compared(session)
    if found is None:
        return None
    answer = _asked(engine, session, found[0])
    if inspect.isawaitable(answer):
        answer = await _settled(answer)
    return _decided(session, answer, found[1])


def _asked(engine: Engine, session: Session, changes: Changes) -> object:
    """The hook's answer (or the awaitable of one); ``"reauth"`` if it raised."""
    try:
        return engine.anomaly(session, changes)
    except Exception:
        logger.exception("sessionware: the anomaly hook raised; the session must re-authenticate")
        return "reauth"


async def _settled(answer: Awaitable[object]) -> object:
    try:
        return await answer
    except Exception:
        logger.exception("sessionware: the anomaly hook raised; the session must re-authenticate")
        return "reauth"


def _compared(session: Session) -> tuple[Changes, list[Any]] | None:
    """What differs between the request's context and the logged-in session's, or None."""
    meta = session._current_meta()
    recorded = meta.get("cx")
    if meta.get("uid") is None or type(recorded) is not list or len(recorded) != 3:
        return None
    now = context_of(session._scope)
    if now == recorded:
        return None
    differs = [(old, new) if old != new else None for old, new in zip(recorded, now, strict=True)]
    return Changes(*differs), now


def _decided(session: Session, action: object, now: list[Any]) -> Steps[None] | None:
    """Carry out the hook's answer; the steps of a "drop", or None."""
    if action not in _ACTIONS:
        logger.error(
            "sessionware: the anomaly hook answered %r, not one of %s; taken as 'reauth'", action, _ACTIONS
        )
        action = "reauth"
    if action == "allow":
        session._meta_for_update()["cx"] = now
    elif action == "reauth":
        created = session._times()[0]
        session._lifecycle = (created, None)
    else:
        # Ended now, whatever the app's response: deleted before the app runs.
        key = session._key if session._key is not None else (session._allow[0] if session._allow else None)
        session.log_out()
        if key is not None:
            return _deleted(key)
    return None


def _deleted(key: str) -> Steps[None]:
    yield Delete(key)
