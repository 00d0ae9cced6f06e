"""Mutated records never escape as exceptions: every one is a session or a refused cookie.

A record that passes the key check (its cookie's MAC, or a server-side ID that
verifies) is still only trusted as far as it decodes: a truncated, altered or
foreign payload -- a pickle, JSON of the wrong shape -- gives a fresh empty
session, decided while loading, never an exception later in the app
(``session.user_id``, the write at the end of the request).
"""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from sessionware import CookieStore, InvalidCookie, MemoryStore, Session, _record
from sessionware._closing import close_session
from sessionware._codec import IdCodec
from sessionware._config import build_engine
from sessionware._loading import open_session
from sessionware._steps import run_sync

from .conftest import SECRET

T0 = 1_800_000_000
ROUNDS = 100_000

SEEDS_META = [
    b"",
    b'{"uid":42,"ua":"Mozilla/5.0","lvl":"aal2"}',
    b'{"uid":"alice","sid":"abc","grp":"def","ip":"127.0.0.1"}',
]
SEEDS_DATA = [b"{}", b'{"cart":[1,2,{"x":null}],"theme":"dark","n":1.5}', b'{"csrf":"' + b"a" * 40 + b'"}']
FOREIGN = [
    pickle.dumps({"uid": 1}),
    b'{"uid":true}',
    b'{"uid":""}',
    b'{"uid":[1]}',
    b'{"ua":5}',
    b"[1,2]",
    b'"text"',
    b'{"uid":1',
    b"\xff\xfe",
    b'{"a":1}{"b":2}',
    b"null",
    b"1e999",
    b"[" * 5000,
]


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        if kind == 0 and data:  # flip a bit
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif kind == 2:  # insert bytes
            at = rng.randint(0, len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif kind == 3 and data:  # a byte from the JSON alphabet
            data[rng.randrange(len(data))] = rng.choice(b'{}[]",:0123456789aetnul\\')
        elif kind == 4:  # splice in something foreign
            at = rng.randint(0, len(data))
            data[at:at] = rng.choice(FOREIGN)
        elif data:  # overwrite the header's meta length
            data[25 % max(1, len(data))] = rng.randrange(256)
    return bytes(data)


def exercise(session: Session, engine: Any, store: Any) -> None:
    """What an app and the end of a request do with a session: read it all, write, close."""
    assert isinstance(session, Session)
    known = (session.user_id, session.auth_level, session.created_at, session.auth_at, session.expires_at)
    assert known[2] > 0
    dict(session.items())
    session["touched"] = True
    closed = close_session(engine, session, 200, T0 + 1, False)
    if closed is not None and not isinstance(closed, str):
        run_sync(closed, store)


def test_mutated_cookie_records_under_a_valid_key_are_sessions_or_refusals() -> None:
    rng = random.Random(20261203)
    engine = build_engine(secret_key_base=SECRET, store=CookieStore(), cookie_cache=0)
    assert engine.codec is not None
    seeds = [_record.pack(T0, T0, T0, meta, data) for meta in SEEDS_META for data in SEEDS_DATA]
    refused = 0
    for _ in range(ROUNDS):
        plaintext = mutate(rng.choice(seeds), rng)
        cookie = "session=" + engine.codec.encode(plaintext)  # passes the key check
        session = open_session(engine, cookie, T0 + 1)
        assert isinstance(session, Session)
        refused += session.is_new
        exercise(session, engine, None)
    assert 0.3 * ROUNDS < refused < ROUNDS  # the mutations reach both outcomes


def test_mutated_server_side_records_are_sessions_or_refusals() -> None:
    rng = random.Random(20261204)
    store = MemoryStore()
    engine = build_engine(secret_key_base=SECRET, store=store, cookie_cache=0)
    assert engine.ids is not None
    heads = [_record.pack_head(T0, T0, T0, meta) for meta in SEEDS_META]
    fields = [{"cart": '[1,2,{"x":null}]', "theme": '"dark"'}, {}, {"n": "1.5", "csrf": '"abc"'}]
    refused = 0
    for round_ in range(ROUNDS // 2):
        session_id = IdCodec.new_id()
        key = IdCodec.store_key(session_id)
        head = rng.choice(heads)
        stored = dict(rng.choice(fields))
        if round_ % 2:
            head = mutate(head, rng)
        else:  # a field's name or value altered
            name = rng.choice([*stored, "new"]) if stored else "new"
            value = stored.pop(name, "1")
            if rng.random() < 0.3:
                name = mutate(name.encode(), rng).decode("latin-1")
            stored[name] = mutate(value.encode(), rng).decode("latin-1")  # what Redis's store hands on
        store.create(key, head, stored, 60, None)
        session = run_sync(open_session(engine, "session=" + engine.ids.encode(session_id), T0 + 1), store)  # type: ignore[arg-type]
        assert isinstance(session, Session)
        refused += session.is_new
        exercise(session, engine, store)
    assert 0.2 * ROUNDS / 2 < refused < ROUNDS / 2


def test_numbers_that_could_not_be_written_back_do_not_load() -> None:
    """Found by the fuzzer: 1e999 parsed to inf, and NaN is Python's JSON; neither can be saved again."""

    for data in (b'{"a":1e999}', b'{"a":-1e999}', b'{"a":NaN}', b'{"a":Infinity}', b'{"a":[-Infinity]}'):
        with pytest.raises(InvalidCookie):
            _record.load_data(data)
    assert _record.load_data(b'{"a":1.5e300,"b":-0.0}') == {"a": 1.5e300, "b": -0.0}
