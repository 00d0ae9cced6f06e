"""Opening a session: the request's ``Cookie`` header becomes a :class:`Session`.

No cookie, or one that does not verify, decode or pass its deadlines, gives a
fresh empty session and one debug line, never an exception: every part of a
record is decoded and checked here, before the app runs. A server-side ID
that verifies is looked up in the store (a forged one never reaches it); an
unknown ID is never adopted.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from . import _record
from ._codec import MAX_COOKIE_BYTES, IdCodec, b64encode
from ._cookies import find_cookie
from ._dbsc_state import FIELD as _DBSC_FIELD
from ._engine import Engine, logger
from ._session import Session
from ._steps import Delete, Load, Pending, Steps, Then, WouldBlock, failed
from .errors import InvalidCookie, SessionError
from .typing import StoredRecord

__all__ = ["allow_key", "open_session"]

# Builds the named tuples below without their Python-level __new__: this is the path
# every request with a server-side session takes.
_then = tuple.__new__


def open_session(
    engine: Engine, cookie_header: str | None, now: int, https: bool = False, inline: Any = None
) -> Session | Pending[Session]:
    """Turn the request's ``Cookie`` header (None if absent) into a Session.

    ``https`` says whether the request came over https, which decides the
    cookie's name when it is prefixed only there (see ``CookieAttributes``).
    Returns the Session, or -- when a store must be asked -- steps that
    produce it, for :func:`~._steps.run_sync` or :func:`~._steps.run_async`.

    ``inline`` is the store's inline face, if it has one (see ``_steps``): its
    ``load`` then answers at once, or raises ``WouldBlock`` and the steps ask
    instead -- the same lifecycle, without the steps' cost on the path of every
    request with a server-side session.
    """
    if cookie_header is None:
        return engine.new_session(now)
    name = engine.cookie.name_for(https)
    value, count = find_cookie(cookie_header, name, engine.targets[https])
    if value is None or count > 1:
        if count > 1:
            logger.warning(
                "sessionware refused the %r session cookie: the request carried it %d times "
                "(possibly one tossed in by another site); treating the request as anonymous",
                name,
                count,
            )
        session = engine.new_session(now, had_cookie=count > 0)
        if count > 1 and engine.observed:
            session._note("invalid_cookie", None, "malformed", cookie=engine.cookie.name)
        return session
    if len(value) + len(name) >= MAX_COOKIE_BYTES:  # name=value over 4096: refused undecoded
        return engine.refuse("size", now)
    if engine.ids is not None:
        return _load(engine, engine.ids, value, now, inline)
    return _open_cookie(engine, value, now)


def _open_cookie(engine: Engine, value: str, now: int) -> Session | Then[Session]:
    assert engine.codec is not None
    try:
        verified = engine.verified.get(value)
        if verified is None:
            plaintext, stale = engine.codec.decode(value)
            verified = _record.unpack(plaintext), stale
            engine.verified.put(value, verified)
        record, stale = verified
        if not record.created_at:  # a format without times (a cookie Phoenix wrote): starts now
            record = record._replace(created_at=now, touched_at=now)
        if not engine.expiry_of(record.meta).is_valid(record.created_at, record.touched_at, now):
            return engine.refuse("expired", now, record)
        data = engine.load_data(record.data_json)
    except InvalidCookie as exc:
        return engine.refuse(exc.reason, now)
    session = Session.__new__(engine.session_class)
    dict.update(session, data)
    session.__dict__.update(_engine=engine, _now=now, _origin=record)
    if stale:
        session._stale = True
    if engine.revocation is not None and "uid" in record.meta:
        return _check_allowed(engine, session, record, now)
    return session


def allow_key(meta: Mapping[str, object]) -> str | None:
    """The revocation store's key for a logged-in cookie session: ``"<group>/<hash of its ID>"``."""
    sid, group = meta.get("sid"), meta.get("grp")
    if not isinstance(sid, str) or not isinstance(group, str):
        return None
    return group + "/" + b64encode(hashlib.sha256(sid.encode()).digest())


def _check_allowed(
    engine: Engine, session: Session, record: _record.Record, now: int
) -> Session | Then[Session]:
    """A logged-in cookie session stands only while its record is in the revocation store."""
    key = allow_key(record.meta)
    if key is None:
        return engine.refuse("revoked", now)

    def allowed(loaded: StoredRecord | None) -> Session:
        if loaded is None:
            return engine.refuse("revoked", now)
        try:
            touched_at = _record.unpack(loaded[0], b"{}").touched_at
            if engine.dbsc is not None and _DBSC_FIELD in loaded[1]:  # bound: the binding is kept here
                session._dbsc = engine.dbsc.split(loaded[1])[1]
        except InvalidCookie:
            return engine.refuse("revocation record", now)
        session._allow = (key, touched_at)
        return session

    return _then(Then, (_then(Load, (key,)), allowed))


def _load(engine: Engine, ids: IdCodec, value: str, now: int, inline: Any) -> Session | Pending[Session]:
    verified = engine.verified.get(value)
    if verified is None:
        try:
            session_id, stale = ids.decode(value)  # a forged ID never reaches the store
        except InvalidCookie as exc:
            return engine.refuse(exc.reason, now)
        verified = session_id, IdCodec.store_key(session_id), stale
        engine.verified.put(value, verified)
    session_id, key, stale = verified
    if inline is not None:
        try:
            stored = inline.load(key)
        except WouldBlock:
            pass  # the store would wait: asked through the steps instead
        except SessionError:
            raise
        except Exception as exc:
            raise failed(inline, _then(Load, (key,)), exc) from exc
        else:
            return _loaded(engine, session_id, key, stale, now, stored)
    finish = functools.partial(_loaded, engine, session_id, key, stale, now)
    return _then(Then, (_then(Load, (key,)), finish))


def _loaded(
    engine: Engine, session_id: bytes, key: str, stale: bool, now: int, stored: StoredRecord | None
) -> Session | Steps[Session]:
    """The session a server-side record holds, once the store has answered."""
    if stored is None:
        # Unknown or expired: the ID is never adopted; a write gets a fresh one.
        return engine.refuse("unknown id", now)
    head, fields = stored
    try:
        # The head's times and metadata, decoded and checked (its data part stays
        # b"{}": a server-side session's data is its fields).
        record = engine.heads.get(head)
        if record is None:
            record = _record.unpack(head, b"{}")
            engine.heads.put(head, record)
        if not engine.expiry_of(record.meta).is_valid(record.created_at, record.touched_at, now):
            return _expired(engine, key, now, record)
        binding = None
        if engine.dbsc is not None and _DBSC_FIELD in fields:  # a device-bound session
            fields, binding = engine.dbsc.split(fields)
        data = _record.load_fields(fields)
    except InvalidCookie as exc:
        return engine.refuse(exc.reason, now)
    session = Session.__new__(engine.session_class)
    dict.update(session, data)
    session.__dict__.update(
        _engine=engine, _now=now, _origin=record, _sid=session_id, _key=key, _fields=fields
    )
    if binding is not None:
        session._dbsc = binding
    if stale:
        session._stale = True
    return session


def _expired(engine: Engine, key: str, now: int, record: _record.Record) -> Steps[Session]:
    """A record past its deadline: deleted as it is met, and the request starts afresh."""
    yield Delete(key)
    return engine.refuse("expired", now, record)
