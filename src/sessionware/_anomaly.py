"""Running the anomaly hook (see :mod:`sessionware.anomaly`) on a session just opened."""

from __future__ import annotations

from ._client import context_of
from ._engine import Engine, logger
from ._session import Session
from ._steps import Delete, Steps
from .anomaly import Changes

__all__ = ["check"]

_ACTIONS = ("allow", "reauth", "drop")


def check(engine: Engine, session: Session) -> Steps[None] | None:
    """Compare the request's context with the session's; the steps of a "drop", or None."""
    meta = session._current_meta()
    recorded = meta.get("cx")
    if meta.get("uid") is None or type(recorded) is not list or len(recorded) != 3:
        return None
    now = context_of(session._scope)
    if now == recorded:
        return None
    differs = [(old, new) if old != new else None for old, new in zip(recorded, now, strict=True)]
    changes = Changes(*differs)
    try:
        action = engine.anomaly(session, changes)
    except Exception:
        logger.exception("sessionware: the anomaly hook raised; the session must re-authenticate")
        action = "reauth"
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
