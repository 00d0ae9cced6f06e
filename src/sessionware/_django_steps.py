"""The store steps of :mod:`sessionware.django`'s ``SessionStore``: sans-IO, driven by
``run_sync`` (the sync methods) or ``run_async`` (the ``a...`` ones).

Opening a session from a Django session key, watching a save's store answers
for a session a concurrent request deleted, and deleting by key -- all on the
engine's own steps (:mod:`._loading`, :mod:`._closing`).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from datetime import datetime
from types import GeneratorType
from typing import Any, TypeVar

from ._codec import IdCodec
from ._django_config import Configured
from ._engine import Engine
from ._loading import open_session
from ._session import NONE, Session
from ._steps import Call, Delete, Pending, Then, Update
from .errors import InvalidCookie

__all__ = ["EXPIRY", "Steps", "deleting", "fresh", "needs_save", "opening", "watched"]

T = TypeVar("T")
Steps = Generator[Call, Any, T]

#: What a session key this engine made can look like; anything else is not looked up.
_KEY = re.compile(r"[A-Za-z0-9._-]{8,512}")
EXPIRY = "_session_expiry"  # where Django's set_expiry() keeps a session's own expiry


def fresh(configured: Configured, now: int | None = None) -> Session:
    return configured.engine.new_session(configured.now() if now is None else now)


def needs_save(session: Session) -> bool:
    """Whether sessionware has something to write though Django's flag is not set."""
    if session._action != NONE or session._stale:
        return True
    origin = session._origin
    engine = session._engine
    return (
        origin is not None
        and isinstance(engine, Engine)
        and engine.expiry.touch_due(origin.touched_at, session._now)
    )


def _steps(pending: Pending[T]) -> Steps[T]:
    """``pending`` (a :class:`Then` or a generator) as a generator, to ``yield from``."""
    result = yield from watched(pending, None, [])
    return result


def watched(pending: Pending[T], key: str | None, lost: list[bool]) -> Steps[T]:
    """``pending``'s calls, noting in ``lost`` an update that found no record or a delete
    of ``key`` that found it gone: a concurrent request deleted the session."""
    if type(pending) is Then:
        answer = yield pending.call
        _note(pending.call, answer, key, lost)
        done = pending.then(answer)
        if type(done) is not GeneratorType:
            return done  # type: ignore[return-value]
        pending = done
    assert isinstance(pending, GeneratorType)
    try:
        call = next(pending)
        while True:
            answer = yield call
            _note(call, answer, key, lost)
            call = pending.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _note(call: Call, answer: Any, key: str | None, lost: list[bool]) -> None:
    if not answer and (
        type(call) is Update or (type(call) is Delete and key is not None and call.key == key)
    ):
        lost.append(True)


def opening(configured: Configured, session_key: str | None) -> Steps[Session]:
    """The session a key names (a fresh one for an unknown, forged or expired key)."""
    engine = configured.engine
    now = configured.now()
    if session_key is None or not _KEY.fullmatch(session_key):
        return engine.new_session(now)
    opened = open_session(engine, engine.targets[0] + session_key, now)
    session = opened if isinstance(opened, Session) else (yield from _steps(opened))
    if session._origin is not None and session._key is not None:
        deadline = _own_deadline(dict.get(session, EXPIRY), session._origin.touched_at)
        if deadline is not None and deadline <= now:
            # Past the expiry set_expiry() gave it: deleted as it is met.
            yield Delete(session._key)
            return engine.refuse("expired (set_expiry)", now)
    return session


def _own_deadline(expiry: object, touched_at: int) -> float | None:
    """Unix seconds at which ``set_expiry()``'s value ends a session last active at ``touched_at``."""
    if isinstance(expiry, bool) or not expiry:
        return None  # none, or 0 (a browser-session cookie): the engine's expiry applies
    if isinstance(expiry, int | float):
        return touched_at + expiry
    if isinstance(expiry, str):
        try:
            return datetime.fromisoformat(expiry).timestamp()  # naive: local time, as Django's
        except ValueError:
            return None
    return None


def deleting(engine: Engine, session_key: str | None) -> Steps[bool]:
    """Delete the record a session key names; whether there was one."""
    if session_key is None or not _KEY.fullmatch(session_key) or engine.ids is None:
        return False
    try:
        session_id, _ = engine.ids.decode(session_key)
    except InvalidCookie:
        return False  # not a key this app made: nothing of it is stored
    return bool((yield Delete(IdCodec.store_key(session_id))))
