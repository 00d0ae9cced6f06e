"""Remember-me tokens: the store side, as steps (sans-IO, like the rest of the lifecycle).

A token is a signed random ID (:class:`~._codec.IdCodec` under the remember-me
cookie's name, so a session ID is never taken for one, nor one made under
another secret). The store keeps, under ``"<user group>/<SHA-256 of it>"``, a
record with no fields whose head says who it is for (meta ``uid``, ``rmb: 1``,
the user agent), when it was issued (``created``) and, once replaced, when
(``rot``); it is filed under the user's registry key, so "log out everywhere"
deletes it with the user's sessions. Listings and session limits skip it.

:func:`on_open` runs after the session is opened (an anonymous session with a
valid cookie is logged in again; a logged-in one has its token reissued when
due); :func:`on_close` after the session is saved (a new token is created and
its cookie made, or the presented one deleted on log-out).
"""

from __future__ import annotations

from typing import Any

from . import _record
from ._codec import IdCodec
from ._cookies import CookieAttributes, find_cookie
from ._engine import _REASONS, Engine
from ._session import DROP, LOG_OUT, Session
from ._steps import Create, Delete, DeleteUser, Load, Steps, Update
from .errors import InvalidCookie
from .remember import RememberMe
from .typing import Change

__all__ = ["FORGET", "ISSUE", "KEEP", "Runtime", "on_close", "on_open"]

#: ``session._remember``: make a new token (a log-in with ``remember=True``, a reissue);
#: expire the browser's cookie; make a new one only if the browser had one (the session
#: kept by "log out everywhere else", whose token went with the others).
ISSUE = "issue"
_LATE = 3600
FORGET = "forget"
KEEP = "keep"


class Runtime:
    """Remember-me for one engine: the options, the token codec and the cookie."""

    __slots__ = ("cookie", "ids", "options")

    def __init__(self, options: RememberMe, engine: Engine, cookie: CookieAttributes) -> None:
        self.options = options
        self.ids = IdCodec(engine.keys, options.cookie_name)
        self.cookie = cookie

    def find(self, cookie_header: str | None, https: bool) -> str | None:
        if cookie_header is None:
            return None
        name = self.cookie.name_for(https)
        value, count = find_cookie(cookie_header, name, name + "=")
        return value if count == 1 else None


def on_open(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Steps[None] | None:
    """What the remember-me cookie does to a session just opened, or None (nothing)."""
    runtime: Runtime = engine.remember
    meta = session._current_meta()
    if meta.get("uid") is not None:
        issued = meta.get("rmi")
        if type(issued) is not int or now - issued < runtime.options.reissue_after:
            return None
        value = runtime.find(cookie_header, https)
        return None if value is None else _reissue(engine, runtime, session, value, now)
    value = runtime.find(cookie_header, https)
    return None if value is None else _log_in_again(engine, runtime, session, value, now)


def _token(engine: Engine, runtime: Runtime, session: Session, value: str, now: int) -> Steps[Any]:
    """The token record ``value`` names, as ``(key, record)``, or None (noted, cookie forgotten)."""
    reason = None
    if len(value) > 512:
        reason = "oversize"
    else:
        try:
            token_id, _ = runtime.ids.decode(value)
        except InvalidCookie as exc:
            reason = _REASONS.get(exc.reason, "malformed")
    if reason is None:
        key = IdCodec.store_key(token_id)
        stored = yield Load(key)
        record = None
        if stored is None:
            reason = "revoked"
        else:
            try:
                record = _record.unpack(stored[0], b"{}")
            except InvalidCookie:
                reason = "malformed"
        if record is not None:
            meta = record.meta
            if meta.get("rmb") != 1 or meta.get("uid") is None:
                reason = "malformed"
            elif now >= record.created_at + runtime.options.max_age:
                reason = "expired"
                yield Delete(key)
            else:
                return key, record
    if engine.observed:
        session._note("invalid_cookie", None, reason, cookie=runtime.options.cookie_name)
    session._remember = FORGET
    return None


def _stolen(
    engine: Engine, runtime: Runtime, session: Session, record: _record.Record, now: int
) -> Steps[bool]:
    """Whether a replaced token is back past the grace window: if so, the user's every
    session and token is revoked (a thief's copy, or the victim's after the thief used it)."""
    rotated = record.meta.get("rot")
    if type(rotated) is not int:
        return False
    if now - rotated <= runtime.options.grace:
        return False
    uid = record.meta["uid"]
    count = 0
    for user_key in engine.user_keys(uid):
        count += yield DeleteUser(user_key, None)
    if engine.observed:
        session._note("remember_theft", uid, "replayed", count=int(count))
    session._remember = FORGET
    return True


def _retire(engine: Engine, runtime: Runtime, key: str, record: _record.Record, now: int) -> Steps[bool]:
    """Mark the token replaced (kept until it would have expired, to recognise a replay)."""
    meta = {**record.meta, "rot": now}
    head = _record.pack_head(record.created_at, now, None, _record.dump_meta(meta))
    ttl = max(1, record.created_at + runtime.options.max_age + _LATE - now)
    return bool((yield Update(key, Change(head, {}, (), ttl, engine.user_of(key, meta)))))


def _log_in_again(engine: Engine, runtime: Runtime, session: Session, value: str, now: int) -> Steps[None]:
    found = yield from _token(engine, runtime, session, value, now)
    if found is None:
        return
    key, record = found
    if (yield from _stolen(engine, runtime, session, record, now)):
        return
    uid = record.meta["uid"]
    if "rot" in record.meta:  # replaced a moment ago by a parallel request: logged in, not replaced again
        session.log_in(uid, how="remember")
        session._meta_for_update()["rmi"] = record.meta["rot"]
        session._remember = None
        return
    if not (yield from _retire(engine, runtime, key, record, now)):
        session._remember = FORGET  # deleted meanwhile (a log-out everywhere): nobody logged in
        return
    session.log_in(uid, how="remember", remember=True)


def _reissue(engine: Engine, runtime: Runtime, session: Session, value: str, now: int) -> Steps[None]:
    found = yield from _token(engine, runtime, session, value, now)
    if found is None:
        session._meta_for_update().pop("rmi", None)
        return
    key, record = found
    if str(record.meta["uid"]) != str(session._current_meta().get("uid")):
        session._remember = None  # another user's token: left alone, and never switches users
        return
    if (yield from _stolen(engine, runtime, session, record, now)):
        session.drop()  # revoked with the others
        return
    if "rot" in record.meta or not (yield from _retire(engine, runtime, key, record, now)):
        return
    session._meta_for_update()["rmi"] = now
    session._remember = ISSUE


def on_close(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Steps[list[str]] | None:
    """The remember-me work once the session is saved: the ``Set-Cookie`` values it makes."""
    runtime: Runtime = engine.remember
    state = session._remember
    ending = session._action in (LOG_OUT, DROP)
    if state is None and not ending:
        return None
    return _closing(engine, runtime, session, state, ending, cookie_header, now, https)


def _closing(
    engine: Engine,
    runtime: Runtime,
    session: Session,
    state: Any,
    ending: bool,
    cookie_header: str | None,
    now: int,
    https: bool,
) -> Steps[list[str]]:
    value = runtime.find(cookie_header, https)
    if ending or state == FORGET:
        if value is not None and ending:
            try:
                token_id, _ = runtime.ids.decode(value)
            except InvalidCookie:
                pass
            else:
                yield Delete(IdCodec.store_key(token_id))
        return [] if value is None and state != FORGET else [runtime.cookie.deletion(https=https)]
    if state == KEEP and value is None:
        return []
    uid = session._current_meta().get("uid")
    if uid is None:
        return []
    token_id = IdCodec.new_id(engine.user_group(uid))
    key = IdCodec.store_key(token_id)
    meta: dict[str, Any] = {"uid": uid, "rmb": 1}
    agent = session._current_meta().get("ua")
    if agent:
        meta["ua"] = agent
    head = _record.pack_head(now, now, None, _record.dump_meta(meta))
    # Kept an hour past max_age, so that a cookie that comes back late is told "expired".
    yield Create(key, head, {}, runtime.options.max_age + _LATE, engine.user_of(key, meta))
    return [runtime.cookie.header(runtime.ids.encode(token_id), https=https, max_age=runtime.options.max_age)]
