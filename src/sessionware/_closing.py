"""Closing a session: what the request did becomes a store write and a ``Set-Cookie``.

:func:`~._plan.plan` decides what the end of the request does;
:func:`close_session` carries it out. A server-side write is ONE atomic
:class:`~._steps.Update` carrying only this request's changes (the keys it
set or deleted, a new head, TTL and registry entry), which the store applies
to the record as it is now: no version, no retry, and a record another
request deleted is never written back. New IDs (a new session, renew, log-in,
log-out with data written after it) and revocation records are the business
of :mod:`._lifecycle`.
"""

from __future__ import annotations

from . import _lifecycle
from ._engine import Engine, logger
from ._plan import CREATE, DELETE, NOTHING, REISSUE, Plan, plan
from ._session import Session
from ._steps import Delete, Pending, Steps, Then, Update
from .typing import Change

__all__ = ["close_session"]


def close_session(
    engine: Engine, session: Session, status: int, now: int, https: bool
) -> str | Pending[str | None] | None:
    """Finish the request: the ``Set-Cookie`` value to send, or None.

    When a store must be written first, returns steps that produce it, for
    :func:`~._steps.run_sync` or :func:`~._steps.run_async` to drive.
    """
    planned = plan(engine, session, status, now)
    if planned.kind == NOTHING:
        return None
    if engine.ids is not None:
        return _close_server_side(engine, session, planned, now, https)
    assert engine.codec is not None
    if engine.revocation is not None and (
        session._allow is not None or (planned.kind != DELETE and "uid" in planned.meta)
    ):
        return _lifecycle.close_revocable(engine, session, planned, now, https)
    if planned.kind == DELETE:
        return engine.deletion(session, https)
    return engine.cookie_for(planned.cookie_value(engine), session, now, https)


def _close_server_side(
    engine: Engine, session: Session, planned: Plan, now: int, https: bool
) -> str | Pending[str | None] | None:
    assert engine.ids is not None
    key = session._key
    if planned.kind == DELETE:
        return _deleted(engine, session, key, https)
    if planned.kind == CREATE:
        return _lifecycle.create_server_side(engine, session, planned, now, https)
    assert key is not None
    sid = session._sid
    assert sid is not None
    if planned.kind == REISSUE:  # only the cookie: an older secret signed it
        return engine.cookie_for(engine.ids.encode(sid), session, now, https)
    # WRITE or TOUCH: one atomic update of the record as it is now.
    change = Change(
        planned.head(),
        planned.fields or {},
        planned.removed,
        engine.ttl(planned.created, now, planned.meta),
        engine.user_of(key, planned.meta),
    )

    def written(done: bool) -> str | None:
        if not done:
            # Dropped, renewed or revoked by a concurrent request: never resurrected.
            logger.debug("sessionware did not save a session deleted by a concurrent request")
            return None
        # The ID cookie is re-sent only when an older secret signed it, or to refresh a
        # persistent cookie's Max-Age after a write.
        if session._stale or engine.persistent(session):
            assert engine.ids is not None
            return engine.cookie_for(engine.ids.encode(sid), session, now, https)
        return None

    return _then(Then, (_then(Update, (key, change)), written))


def _deleted(engine: Engine, session: Session, key: str | None, https: bool) -> Steps[str | None]:
    if key is not None:
        yield Delete(key)
    return engine.deletion(session, https)


_then = tuple.__new__  # the named tuples without their Python-level __new__ (the hot path)
