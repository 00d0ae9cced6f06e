"""A record whose parts do not decode is an invalid session, never a 500: every store, ASGI and WSGI.

The record passes the key check -- its cookie's MAC verifies, or its signed ID
does -- but what it holds is not what sessionware writes: a pickle, truncated
JSON, metadata of the wrong shape. The request goes on with a fresh, empty
session; the app never sees an exception (``session.user_id`` included).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from sessionware import CookieStore, _record
from sessionware._codec import EncryptedCodec, IdCodec, SignedCodec
from sessionware._keys import KeyRing
from sessionware.testing import FakeClock

from .conftest import SECRET, build_app, call, make_server_store
from .test_wsgi import wcall, wsgi_app

BAD_META = [
    pickle.dumps({"uid": 42}),  # a pickle where JSON belongs
    b'{"uid":42,"ua":"trunc',  # truncated
    b'["uid",42]',  # JSON, but not an object
    b'{"uid":true}',  # a user ID that log_in would never write
    b'{"uid":"alice","ua":7}',  # a user agent that is not text
    b'{"uid":"' + b"x" * 300 + b'"}',  # a user ID longer than log_in allows
    b"\xff\xfe\x00",  # not even text
]


def bad_cookie(kind: str, meta: bytes, now: int) -> str:
    """A cookie value that verifies under the app's key, holding ``meta``."""
    keys = KeyRing(SECRET)
    codec = EncryptedCodec(keys, "session") if kind == "encrypted" else SignedCodec(keys, "session")
    return codec.encode(_record.pack(now, now, now, meta, b'{"a":1}'))


def bad_server_record(store: Any, meta: bytes, now: int) -> str:
    """A record in ``store`` whose head holds ``meta``; the cookie value that finds it."""
    session_id = IdCodec.new_id()
    store.create(IdCodec.store_key(session_id), _record.pack_head(now, now, now, meta), {"a": "1"}, 600, None)
    return IdCodec(KeyRing(SECRET), "session").encode(session_id)


@pytest.mark.parametrize("meta", BAD_META, ids=range(len(BAD_META)))
@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
@pytest.mark.parametrize("kind", ["encrypted", "signed", "memory", "sqlite", "redis", "postgres"])
def test_a_record_whose_metadata_does_not_decode_is_a_fresh_session(
    kind: str, adapter: str, meta: bytes, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    clock = FakeClock()
    now = int(clock())
    if kind in ("encrypted", "signed"):
        store: Any = CookieStore(encrypt=kind == "encrypted")
        value = bad_cookie(kind, meta, now)
    else:
        store = make_server_store(kind, request, tmp_path, clock)
        value = bad_server_record(store, meta, now)
    if adapter == "asgi":
        app = build_app(store, clock)
        reply = call(app, "/whoami", cookie=f"session={value}")
    else:
        reply = wcall(wsgi_app(store, clock), "/whoami", cookie=f"session={value}")
    assert reply.status == 200
    assert reply.json()["user"] is None
    assert reply.json()["data"] == {}  # the record's data is not trusted either
    # and the app goes on: a write starts a fresh session under a new ID
    written = (
        call(build_app(store, clock), "/write/b/2", cookie=f"session={value}")
        if adapter == "asgi"
        else wcall(wsgi_app(store, clock), "/write/b/2", cookie=f"session={value}")
    )
    assert written.status == 200
    assert value not in (written.set_cookie or "")
