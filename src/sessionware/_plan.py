"""What the end of a request does, decided once for every kind of store (pure).

A change is any difference between the session as loaded and as it ends --
of its data (compared serialized, so in-place edits of nested values count),
its metadata or its times. :func:`plan` turns the session's pending action and
its changes into a :class:`Plan`; :mod:`._closing` carries it out.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from . import _record
from ._codec import b64encode
from ._engine import Engine
from ._session import DROP, IGNORE, LOG_OUT, NONE, RENEW, Session

__all__ = ["CREATE", "DELETE", "NOTHING", "REISSUE", "TOUCH", "WRITE", "Plan", "plan"]

#: Random bytes in a cookie session's own ID (server-side sessions use 32-byte IDs).
SESSION_ID_BYTES = 16

# What the end of a request does.
NOTHING = 0  # send nothing
DELETE = 1  # drop: delete the record, expire the cookie
CREATE = 2  # a new record under a new ID (new session, or renew)
WRITE = 3  # the session changed: update the existing record
TOUCH = 4  # nothing changed, but activity is due to be recorded
REISSUE = 5  # nothing changed, but the cookie was made under an older secret


class Plan(NamedTuple):
    """What to store at the end of a request: the record's parts as they will be.

    ``data_json`` is the whole data (cookie sessions); ``fields`` and
    ``removed`` are what a server-side write sets and removes (for CREATE,
    every field).
    """

    kind: int
    created: int = 0
    touched: int = 0
    auth: int | None = None
    meta: dict[str, Any] = {}  # noqa: RUF012 - a NamedTuple default, never changed
    meta_json: bytes = b""
    data_json: bytes = b""
    fields: Any = None
    removed: tuple[str, ...] = ()

    def record(self) -> bytes:
        """The whole record, as a cookie carries it."""
        return _record.pack(self.created, self.touched, self.auth, self.meta_json, self.data_json)

    def head(self) -> bytes:
        """The record's head, as a server-side store keeps it."""
        return _record.pack_head(self.created, self.touched, self.auth, self.meta_json)

    def cookie_value(self, engine: Engine) -> str:
        """The cookie carrying this record, remembered as verified: the browser sends it next."""
        assert engine.codec is not None
        value = engine.codec.encode(
            _record.pack(self.created, self.touched, self.auth, self.meta_json, self.data_json)
        )
        # A plan's meta is never the session's own (see plan): safe for the cache to share.
        record = _new_tuple(
            _record.Record, (self.created, self.touched, self.auth, self.meta_json, self.data_json, self.meta)
        )
        engine.verified.put(value, (record, False))
        return value


_NO_META: dict[str, Any] = {}
_NOTHING = Plan(NOTHING)
_DELETE = Plan(DELETE)


def plan(engine: Engine, session: Session, status: int, now: int) -> Plan:
    """What the end of the request does, decided once for every kind of store."""
    if session._read_only or status >= 500:
        return _NOTHING
    action = session._action
    if action == IGNORE:
        return _NOTHING
    if action == DROP:
        return _DELETE
    if action == LOG_OUT:
        if not dict.__len__(session):
            return _DELETE
        action = RENEW  # written to after log-out: a fresh anonymous session under a new ID
    origin = session._origin
    if session._stale and action == NONE and origin is not None and "uid" in origin.meta:
        # Logged in under an older secret: renewed (times kept) so that it is filed
        # under the current secret's user group, or it would fall out of the
        # registry -- unlisted, unrevocable -- once the old secret is removed.
        action = RENEW
    if action == NONE and session._lifecycle is None and session._meta is None and origin is not None:
        # The common request: the data read, perhaps changed in place; times and log-in as loaded.
        return (
            _in_place(engine, session, origin, now)
            if session._dirty
            else _unchanged(engine, session, origin, now)
        )
    if action == NONE and not session._dirty and session._lifecycle is None and session._meta is None:
        return _NOTHING  # a new session, untouched
    created, auth = session._times()
    if session._meta is not None:
        meta = dict(session._meta)  # the plan's own: the session's may still change
        meta_json = _record.dump_meta(meta)
    else:
        meta = _NO_META if origin is None else origin.meta
        meta_json = b"" if origin is None else origin.meta_json
    if action == RENEW or origin is None:
        return _new_record(engine, session, action, created, auth, meta, meta_json, now)
    touched = max(now, created)  # a clock behind the one that logged in: never before the start
    lifecycle_changed = (
        meta_json != origin.meta_json or auth != origin.auth_at or created != origin.created_at
    )
    if engine.ids is not None:
        fields, removed = (
            _record.field_changes(session, session._fields or {}) if session._dirty else ({}, ())
        )
        if fields or removed or lifecycle_changed:
            return Plan(WRITE, created, touched, auth, meta, meta_json, b"", fields, removed)
    else:
        data_json = engine.dump_data(session) if session._dirty else origin.data_json
        if data_json != origin.data_json or lifecycle_changed:
            return Plan(WRITE, created, touched, auth, meta, meta_json, data_json)
    return _unchanged(engine, session, origin, now)


def _in_place(engine: Engine, session: Session, origin: _record.Record, now: int) -> Plan:
    """A loaded session whose data may have changed, nothing else: a write of the data, or less."""
    created = origin.created_at
    touched = now if now > created else created  # a clock behind the one that logged in
    if engine.ids is not None:
        fields, removed = _record.field_changes(session, session._fields or {})
        if fields or removed:
            return _new_tuple(
                Plan,
                (
                    WRITE,
                    created,
                    touched,
                    origin.auth_at,
                    origin.meta,
                    origin.meta_json,
                    b"",
                    fields,
                    removed,
                ),
            )
    else:
        data_json = engine.dump_data(session)
        if data_json != origin.data_json:
            return _new_tuple(
                Plan,
                (WRITE, created, touched, origin.auth_at, origin.meta, origin.meta_json, data_json, None, ()),
            )
    return _unchanged(engine, session, origin, now)


# Builds a Plan from all its parts without NamedTuple's Python-level __new__ (the hot path).
_new_tuple = tuple.__new__


def _unchanged(engine: Engine, session: Session, origin: _record.Record, now: int) -> Plan:
    """A session that did not change: a touch if one is due, a re-issue if stale, else nothing."""
    if engine.expiry_of(origin.meta).touch_due(origin.touched_at, now):
        return Plan(
            TOUCH, origin.created_at, now, origin.auth_at, origin.meta, origin.meta_json, origin.data_json
        )
    if session._stale:
        return Plan(
            REISSUE,
            origin.created_at,
            origin.touched_at,
            origin.auth_at,
            origin.meta,
            origin.meta_json,
            origin.data_json,
        )
    return _NOTHING


def _new_record(
    engine: Engine,
    session: Session,
    action: int,
    created: int,
    auth: int | None,
    meta: dict[str, Any],
    meta_json: bytes,
    now: int,
) -> Plan:
    """A record under a new ID: a new session that was written to, or a renewal."""
    origin = session._origin
    touched = max(now, created)
    if engine.ids is not None:
        fields = _record.fields_of(session) if session._dirty else (session._fields or {})
        if origin is None and action != RENEW and not (fields or meta_json or auth is not None):
            return _NOTHING  # a new session nobody wrote to: nothing stored, nothing sent
        return Plan(CREATE, created, touched, auth, meta, meta_json, b"", fields)
    if session._dirty:
        data_json = engine.dump_data(session)
    else:
        data_json = engine.empty_data if origin is None else origin.data_json
    if (
        origin is None
        and action != RENEW
        and data_json == engine.empty_data
        and not meta_json
        and auth is None
    ):
        return _NOTHING
    # A cookie session carries its own random ID, new on every renew, so a copy of
    # an earlier cookie can be told apart (and revoked); a logged-in one also its
    # user's group, which files its revocation record.
    fresh = {**meta, "sid": b64encode(os.urandom(SESSION_ID_BYTES))}
    if "uid" in fresh:
        fresh["grp"] = b64encode(engine.user_group(fresh["uid"]))
    else:
        fresh.pop("grp", None)
    return Plan(CREATE, created, touched, auth, fresh, _record.dump_meta(fresh), data_json)
