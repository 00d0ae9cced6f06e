"""Running the anomaly hook (see :mod:`sessionware.anomaly`) on a session just opened."""

from __future__ import annotations

from ._client import context_of
from ._engine import Engine, logger
from ._session import Session
from .anomaly import Changes

__all__ = ["check"]

_ACTIONS = ("allow", "reauth", "drop")


def check(engine: Engine, session: Session) -> None:
    meta = session._current_meta()
    recorded = meta.get("cx")
    if meta.get("uid") is None or type(recorded) is not list or len(recorded) != 3:
        return
    now = context_of(session._scope)
    if now == recorded:
        return
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
        session.log_out()
