"""The store side of renew, log-in and log-out: new IDs, old ones retired, never resurrected.

A renewal (``renew()``, ``log_in()``, ``reauthenticated()``, a write after
``log_out()``) creates the record under a new ID, then deletes the old one.
The delete's answer tells whether the old session was still alive: if a
concurrent request dropped or revoked it meanwhile, the new record is deleted
too and the cookie expired, so a session that was ended never comes back
under another ID -- and a log-in's new identity is never carried into a
session another request dropped.

Logged-in cookie sessions with a revocation store keep a small record there
(:func:`close_revocable`) through the same steps.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from . import _record
from ._codec import IdCodec
from ._engine import Engine, logger
from ._loading import allow_key
from ._plan import CREATE, DELETE, TOUCH, Plan
from ._session import NONE, Session
from ._steps import Call, Create, Delete, ListUser, Steps, Update
from .errors import InvalidCookie, SessionLimitReached
from .typing import Change

__all__ = ["close_revocable", "create_server_side"]


def create_server_side(
    engine: Engine, session: Session, planned: Plan, now: int, https: bool
) -> Steps[str | None]:
    """A server-side record under a new ID (a new session, or a renewal of this one)."""
    assert engine.ids is not None
    uid = planned.meta.get("uid")
    new_id = IdCodec.new_id(None if uid is None else engine.user_group(uid))
    new_key = IdCodec.store_key(new_id)
    user = engine.user_of(new_key, planned.meta)
    old_key = session._key
    replaced = () if old_key is None else (old_key,)
    if user is not None:
        yield from _enforce_limit(engine, user, keep=replaced, now=now, before=True, session=session)
    ttl = engine.ttl(planned.created, now, planned.meta)
    yield Create(new_key, planned.head(), planned.fields or {}, ttl, user)
    if user is not None:
        # The record being replaced is deleted below: it must not count, nor be
        # evicted in its successor's place.
        yield from _enforce_limit(
            engine, user, keep=(new_key, *replaced), now=now, before=False, session=session
        )
    if old_key is not None and not (yield Delete(old_key)):
        # Renewing a session a concurrent request dropped or revoked since this one
        # loaded it: it is not brought back under a new ID.
        yield Delete(new_key)
        logger.debug("sessionware did not renew a session deleted by a concurrent request")
        return _lost_renewal(engine, session, https)
    session._new_key = new_key
    value = engine.ids.encode(new_id)
    engine.verified.put(value, (new_id, new_key, False))  # the browser sends it next
    return engine.cookie_for(value, session, now, https)


def close_revocable(
    engine: Engine, session: Session, planned: Plan, now: int, https: bool
) -> Steps[str | None]:
    """A logged-in cookie session's changes, kept in step with its revocation record."""
    assert engine.codec is not None
    old = session._allow
    if planned.kind == DELETE:
        if old is not None:
            yield Delete(old[0])
        return engine.deletion(session, https)
    # Made (and its size checked) before the store is touched: a session too large
    # for its cookie must not have revoked the one the browser holds.
    cookie = engine.cookie_for(planned.cookie_value(engine), session, now, https)
    # The revocation record: the record's head without the data.
    head = _record.pack_head(planned.created, planned.touched, planned.auth, planned.meta_json)
    ttl = engine.ttl(planned.created, now, planned.meta)
    if planned.kind == CREATE:
        key = allow_key(planned.meta)
        if key is not None:
            user = engine.user_of(key, planned.meta)
            replaced = () if old is None else (old[0],)
            if user is not None:
                yield from _enforce_limit(engine, user, keep=replaced, now=now, before=True, session=session)
            yield Create(key, head, {}, ttl, user)
            session._new_key = key
            if user is not None:
                yield from _enforce_limit(
                    engine, user, keep=(key, *replaced), now=now, before=False, session=session
                )
        if old is not None and not (yield Delete(old[0])):
            if key is not None:
                yield Delete(key)  # renewing a session revoked meanwhile: not brought back
            return _lost_renewal(engine, session, https)
    elif old is not None and (
        planned.kind == TOUCH
        or engine.expiry_of(planned.meta).touch_due(old[1], now)
        or (session._origin is not None and planned.meta_json != session._origin.meta_json)
    ):
        # Activity is recorded in the revocation record too -- on a touch, and on a
        # write once a touch is due there -- or it would expire under a session in use;
        # and so is a change of metadata (a session made persistent gets its TTL).
        if session._dbsc is not None:  # device-bound (DBSC): the record's head keeps saying so
            meta_json = _record.dump_meta({**planned.meta, "dbsc": 1})
            head = _record.pack_head(planned.created, planned.touched, planned.auth, meta_json)
        yield Update(old[0], Change(head, {}, (), ttl, engine.user_of(old[0], planned.meta)))
    return cookie


def _lost_renewal(engine: Engine, session: Session, https: bool) -> str | None:
    """The cookie for a renewal that found its session deleted by a concurrent request.

    The app's own renewal (log-in, say) expires the cookie. A renewal the
    engine chose -- re-filing a session made under an older secret -- sends
    nothing: the concurrent request that won renewed it too, and its cookie
    must not be overwritten.
    """
    return None if session._action == NONE else engine.cookie.deletion(https=https)


def _enforce_limit(
    engine: Engine, user: str, *, keep: tuple[str, ...], now: int, before: bool, session: Session
) -> Generator[Call, Any, None]:
    """``max_sessions_per_user``: before a log-in, refuse it ("reject"); after it, end the
    least recently active sessions beyond the limit ("evict_oldest")."""
    if engine.session_limit is None:
        return
    limit, reject = engine.session_limit
    if before != reject:
        return
    live: list[tuple[int, str]] = []
    for key, head in (yield ListUser(user)):
        try:
            record = _record.unpack(head, b"{}")
        except InvalidCookie:
            continue
        if "rmb" in record.meta:  # a remember-me token (see _remember), not a session
            continue
        expiry = engine.expiry_of(record.meta)
        if key not in keep and expiry.is_valid(record.created_at, record.touched_at, now):
            live.append((record.touched_at, key))
    uid = session._current_meta().get("uid")
    if reject:
        if len(live) >= limit:
            if engine.observed:
                session._note("session_limit", uid, "reject")
            raise SessionLimitReached(limit)
        return
    live.sort()
    evicted = live[: max(0, len(live) - (limit - 1))]
    for _, key in evicted:
        yield Delete(key)
    if evicted and engine.observed:
        session._note("session_limit", uid, "evict", count=len(evicted))
