"""Proofs for ../shared/SECURITY.md: each test is named after the SW item it demonstrates.

Items that belong to later work (CSRF, log-in lifecycle, registry, revocation of
cookie sessions, shared stores) are proven where that work lands.
"""

from __future__ import annotations

import ast
import hmac
import json
import logging
import os
import pickle
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionware import (
    AAL2,
    ConfigurationError,
    CookieStore,
    Expiry,
    MemoryStore,
    SessionMiddleware,
    SessionTooLarge,
    SQLiteStore,
    _record,
)
from sessionware._codec import EncryptedCodec, IdCodec, SignedCodec, b64decode, b64encode
from sessionware._keys import KeyRing
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import OLD_SECRET, SECRET, build_app, call
from .doubles import Recording

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sessionware"
App = Callable[..., ASGIApp]


async def noop(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


def cookie_value(pair: str) -> str:
    return pair.split("=", 1)[1]


# -- A. token generation and validation -------------------------------------------


def test_sw01_session_ids_are_unique_256_bit_csprng_output_without_structure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [IdCodec.new_id()[8:] for _ in range(200_000)]  # the random part, after the group
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {32}
    # every bit position is 1 in 50 % +- 2 % of 20,000 IDs: no fixed or structured bits
    # (+-2 % is 5.7 standard deviations: a false alarm about once in 10**5 runs)
    sample = ids[:20_000]
    counts: Counter[int] = Counter()
    for value in sample:
        number = int.from_bytes(value, "big")
        for bit in range(256):
            if number >> bit & 1:
                counts[bit] += 1
    assert all(0.48 * len(sample) <= counts[bit] <= 0.52 * len(sample) for bit in range(256))
    # the random module is not the source; os.urandom is, once per new session
    import random

    monkeypatch.setattr(random, "random", lambda: 0.5)
    monkeypatch.setattr(random, "getrandbits", lambda k: 0)
    calls: list[int] = []
    real = os.urandom

    def counting_urandom(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counting_urandom)
    app = build_app(MemoryStore(), FakeClock())
    first = call(app, "/write/a/1").cookie()
    second = call(app, "/write/a/1").cookie()
    assert first != second
    assert calls.count(32) == 2


def test_sw01_cookie_sessions_carry_their_own_128_bit_random_id() -> None:
    keys = KeyRing(SECRET)
    codec = EncryptedCodec(keys, "session")
    app = build_app(CookieStore(), FakeClock())
    sids = set()
    for _ in range(200):
        record = _record.unpack(codec.decode(cookie_value(call(app, "/write/a/1").cookie()))[0])
        sid = _record.load_meta(record.meta_json)["sid"]
        assert len(b64decode(sid)) == 16
        sids.add(sid)
    assert len(sids) == 200


@pytest.mark.parametrize(
    "planted",
    [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "' OR 1=1--",
        "../../etc/passwd",
        "%00",
        "x" * 10_000,
        "ünï",
    ],
)
def test_sw02_an_id_the_server_did_not_issue_is_never_adopted_nor_sent_to_the_store(
    tmp_path: Path, planted: str
) -> None:
    store = Recording(SQLiteStore(tmp_path / "s.db"))
    seen = store.calls
    app = build_app(store, FakeClock())
    reply = call(app, "/login/victim", cookie=f"session={planted}")
    assert reply.status == 200
    issued = cookie_value(reply.cookie())
    assert issued != planted
    assert all(planted not in key for _, key in seen)
    assert len(seen) == 1  # only the save of the fresh session: the planted value never reached the store
    assert call(app, "/read/user", cookie=f"session={planted}").json() == {"value": None}


def test_sw02_a_validly_signed_but_unknown_id_is_replaced_by_a_fresh_one() -> None:
    store = MemoryStore()
    app = build_app(store, FakeClock())
    planted = IdCodec(KeyRing(SECRET), "session").encode(IdCodec.new_id())
    reply = call(app, "/login/victim", cookie=f"session={planted}")
    assert cookie_value(reply.cookie()) != planted
    assert call(app, "/read/user", cookie=f"session={planted}").json() == {"value": None}
    assert len(store) == 1


def test_sw03_times_live_inside_the_authenticated_payload_and_cannot_be_extended(make_app: App) -> None:
    app = make_app()
    pair = call(app, "/write/a/1").cookie()
    value = cookie_value(pair)
    if value.startswith("s1."):  # readable: rewrite the times without the key
        payload = bytearray(b64decode(value[3:].split(".")[0]))
        payload[9:17] = (2**40).to_bytes(8, "big")  # touched far in the future
        forged = "s1." + b64encode(bytes(payload)) + "." + value.rsplit(".", 1)[1]
        assert call(app, "/read/a", cookie=f"session={forged}").json() == {"value": None}


# -- B. token transport -------------------------------------------------------------


def test_sw04_the_session_is_only_ever_taken_from_its_cookie(make_app: App) -> None:
    app = make_app()
    value = cookie_value(call(app, "/login/alice").cookie())
    assert call(app, f"/read/user?session={value}").json() == {"value": None}
    for header in ("x-session-id", "authorization", "x-session"):
        assert call(app, "/read/user", headers=[(header, value)]).json() == {"value": None}
    assert call(app, "/read/user", cookie=f"other={value}").json() == {"value": None}


def test_sw05_the_cookie_value_appears_only_in_set_cookie(make_app: App) -> None:
    app = make_app()
    login = call(app, "/login/alice")
    pair = login.cookie()
    value = cookie_value(pair)
    replies = [login] + [call(app, path, cookie=pair) for path in ("/read/user", "/info", "/incr", "/drop")]
    for reply in replies:
        assert value.encode() not in reply.body
        for name, header in reply.headers:
            if name != "set-cookie":
                assert value not in header


# -- C. lifecycle -------------------------------------------------------------------


def test_sw08_the_idle_timeout_is_enforced_server_side_and_activity_resets_it(
    make_app: App, clock: FakeClock, store: Any
) -> None:
    idle = AAL2.idle_timeout
    assert idle is not None
    app = make_app()
    pair = call(app, "/login/alice").cookie()

    def whoami() -> Any:
        nonlocal pair
        reply = call(app, "/read/user", cookie=pair)
        if reply.set_cookie is not None:
            pair = reply.cookie()
        return reply.json()["value"]

    clock.advance(idle - 1)
    assert whoami() == "alice"
    clock.advance(idle - 1)
    assert whoami() == "alice"  # the idle timer was reset
    clock.advance(idle + 1)
    assert whoami() is None
    if not isinstance(store, CookieStore):  # the server record is gone too
        assert (
            store.load(IdCodec.store_key(IdCodec(KeyRing(SECRET), "session").decode(cookie_value(pair))[0]))
            is None
        )


def test_sw08_the_store_ttl_is_never_longer_than_the_idle_timeout() -> None:
    store = Recording()
    app = build_app(store, FakeClock())
    cookie = call(app, "/write/a/1").cookie()
    call(app, "/write/a/2", cookie=cookie)
    ttls = store.ttls
    assert store.names() == ["create", "load", "update"]
    assert AAL2.idle_timeout is not None
    assert all(ttl <= AAL2.idle_timeout for ttl in ttls)


def test_sw09_the_absolute_timeout_holds_whatever_the_activity_and_renew_does_not_reset_it(
    make_app: App, clock: FakeClock
) -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=3600)
    app = make_app(expiry=policy)
    pair = call(app, "/login/alice").cookie()
    elapsed = 0
    while elapsed < 3600 - 300:
        clock.advance(300)
        elapsed += 300
        reply = call(app, "/renew" if elapsed == 1800 else "/incr", cookie=pair)
        assert reply.status == 200
        if reply.set_cookie is not None:
            pair = reply.cookie()
        assert call(app, "/read/user", cookie=pair).json() == {"value": "alice"}
    clock.advance(3600 - elapsed)
    assert call(app, "/read/user", cookie=pair).json() == {"value": None}


def test_sw10_cookies_are_browser_session_cookies_by_default_and_expiry_ignores_max_age(
    make_app: App, clock: FakeClock
) -> None:
    app = make_app()
    reply = call(app, "/write/a/1")
    assert reply.set_cookie is not None
    assert "Max-Age" not in reply.set_cookie
    assert "Expires" not in reply.set_cookie
    persistent = call(make_app(persistent=True), "/write/a/1").set_cookie
    assert persistent is not None
    assert "Max-Age=1800" in persistent  # never beyond the nearer deadline
    clock.advance(31 * 60)  # the client ignores expiry and re-sends the cookie
    assert call(app, "/read/a", cookie=reply.cookie()).json() == {"value": None}


def test_sw11_there_is_no_unlimited_default_and_the_default_is_aal2() -> None:
    middleware = SessionMiddleware(noop, secret_key_base=SECRET)
    assert middleware.engine.expiry == AAL2
    assert (AAL2.idle_timeout, AAL2.absolute_timeout) == (1800, 43200)
    for idle, absolute in [(None, None), (0, 10), (10, 0)]:
        with pytest.raises(ConfigurationError):
            Expiry(idle_timeout=idle, absolute_timeout=absolute)


# -- D. cookie attributes ------------------------------------------------------------


def test_sw12_secure_is_set_on_https_and_can_be_forced_on_everywhere(make_app: App) -> None:
    assert "; Secure" in (call(make_app(), "/write/a/1", scheme="https").set_cookie or "")
    forced = call(make_app(secure=True), "/write/a/1").set_cookie
    assert forced is not None
    assert "; Secure" in forced


def test_sw13_the_session_cookie_is_always_httponly(make_app: App) -> None:
    for path in ("/write/a/1",):
        header = call(make_app(), path).set_cookie
        assert header is not None
        assert "; HttpOnly" in header
    with pytest.raises(ConfigurationError, match="unknown option 'httponly'"):
        SessionMiddleware(noop, secret_key_base=SECRET, httponly=False)  # type: ignore[call-arg]


def test_sw14_same_site_is_explicit_and_none_needs_secure(make_app: App) -> None:
    header = call(make_app(), "/write/a/1").set_cookie
    assert header is not None
    assert "; SameSite=Lax" in header
    for bad in ("none", "lax ", "Nonee"):
        with pytest.raises(ConfigurationError):
            SessionMiddleware(noop, secret_key_base=SECRET, same_site=bad)


def test_sw15_host_prefix_rules_are_enforced_case_insensitively(make_app: App) -> None:
    header = call(make_app(cookie_name="__Host-session"), "/write/a/1").set_cookie
    assert header is not None
    assert header.startswith("__Host-session=")
    assert "; Secure" in header
    assert "; Path=/" in header
    assert "Domain" not in header
    for name in ("__Host-s", "__host-s", "__HOST-s"):
        with pytest.raises(ConfigurationError):
            SessionMiddleware(noop, secret_key_base=SECRET, cookie_name=name, domain="example.com")
        with pytest.raises(ConfigurationError):
            SessionMiddleware(noop, secret_key_base=SECRET, cookie_name=name, path="/app")


def test_sw15_the_default_name_is_host_prefixed_on_https_and_plain_only_on_http(make_app: App) -> None:
    app = make_app()
    secure = call(app, "/write/a/1", scheme="https").set_cookie
    assert secure is not None
    assert secure.startswith("__Host-session=")
    for attribute in ("; Secure", "; Path=/"):
        assert attribute in secure
    assert "Domain" not in secure
    plain = call(app, "/write/a/1").set_cookie  # http: browsers refuse prefixed cookies there
    assert plain is not None
    assert plain.startswith("session=")
    assert "Secure" not in plain
    # Each scheme reads its own name only.
    assert call(app, "/read/a", scheme="https", cookie=secure.split(";", 1)[0]).json() == {"value": 1}
    assert call(app, "/read/a", cookie=plain.split(";", 1)[0]).json() == {"value": 1}
    assert call(app, "/read/a", cookie=secure.split(";", 1)[0]).json() == {"value": None}


def test_sw15_scenario_6_a_tossed_unprefixed_cookie_is_not_read_on_https(make_app: App) -> None:
    """A sibling subdomain can set ``session=...; Domain=example.com`` but not ``__Host-session``."""
    app = make_app()
    attacker = call(app, "/login/mallory").cookie()  # a valid cookie, of the unprefixed name
    assert attacker.startswith("session=")
    victim = call(app, "/login/alice", scheme="https").cookie()
    assert victim.startswith("__Host-session=")
    assert call(app, "/whoami", scheme="https", cookie=attacker).json()["data"] == {}
    both = f"{attacker}; {victim}"
    assert call(app, "/whoami", scheme="https", cookie=both).json()["data"] == {"user": "alice"}


def test_sw15_secure_prefix_when_a_domain_or_path_rules_out_host(make_app: App) -> None:
    for options in ({"domain": "example.com"}, {"path": "/app"}):
        header = call(make_app(**options), "/write/a/1", scheme="https").set_cookie
        assert header is not None
        assert header.startswith("__Secure-session="), options
        assert "; Secure" in header
    never = call(make_app(secure=False), "/write/a/1", scheme="https").set_cookie
    assert never is not None
    assert never.startswith("session=")  # secure=False asked for no prefix
    named = call(make_app(cookie_name="sid"), "/write/a/1", scheme="https").set_cookie
    assert named is not None
    assert named.startswith("sid=")  # a name given is used as given


def test_sw16_no_domain_by_default_and_a_narrow_path_with_secure_prefix(make_app: App) -> None:
    header = call(make_app(), "/write/a/1").set_cookie
    assert header is not None
    assert "Domain" not in header
    narrow = call(make_app(cookie_name="__Secure-s", path="/write"), "/write/a/1").set_cookie
    assert narrow is not None
    assert "; Path=/write" in narrow


def test_sw17_one_set_cookie_per_response_and_duplicate_cookies_fail_closed(
    make_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    pair = call(app, "/login/alice").cookie()
    assert len(call(app, "/drop-then-write", cookie=pair).all("set-cookie")) == 1
    pair = call(app, "/login/alice").cookie()
    attacker = call(app, "/login/mallory").cookie()
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        for header in (f"{pair}; {attacker}", f"{attacker}; {pair}"):
            assert call(app, "/read/user", cookie=header).json() == {"value": None}
    assert any("carried it 2 times" in record.getMessage() for record in caplog.records)


# -- G. cookie stores ----------------------------------------------------------------


@pytest.mark.parametrize("encrypt", [True, False])
def test_sw23_every_bit_flip_of_a_cookie_gives_an_anonymous_session(encrypt: bool) -> None:
    app = build_app(CookieStore(encrypt=encrypt), FakeClock())
    value = cookie_value(call(app, "/login/alice").cookie())
    codec = (EncryptedCodec if encrypt else SignedCodec)(KeyRing(SECRET), "session")
    outcomes = set()
    for index in range(len(value)):
        for bit in range(7):
            flipped = value[:index] + chr(ord(value[index]) ^ (1 << bit)) + value[index + 1 :]
            try:
                codec.decode(flipped)
            except Exception as exc:
                outcomes.add(type(exc).__name__)
            else:
                raise AssertionError(f"bit flip accepted at {index}/{bit}")
    assert outcomes == {"InvalidCookie"}
    sample = value[:10] + chr(ord(value[10]) ^ 1) + value[11:]
    reply = call(app, "/read/user", cookie=f"session={sample}")
    assert (reply.status, reply.json()) == (200, {"value": None})


def test_sw24_macs_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    keys = KeyRing(SECRET)
    signed = SignedCodec(keys, "session")
    ids = IdCodec(keys, "session")
    signed.decode(signed.encode(b"payload"))
    ids.decode(ids.encode(IdCodec.new_id()))
    assert len(calls) == 2


def test_sw24_no_secret_is_compared_with_equality_operators() -> None:
    suspicious = ("mac", "sig", "token", "digest", "secret")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                for operand in [node.left, *node.comparators]:
                    name = operand.id if isinstance(operand, ast.Name) else getattr(operand, "attr", "")
                    if any(word in name.lower() for word in suspicious):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_sw24_every_kind_of_bad_cookie_gives_the_same_response(
    make_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    value = cookie_value(call(app, "/write/a/1").cookie())
    tag = value[:3]
    bad = [
        value[:-2] + ("AA" if value[-2:] != "AA" else "BB"),  # MAC / tag
        tag + "!!!!",  # base64
        tag + b64encode(os.urandom(60)),  # wrong key id / garbage
        "zz9." + value[3:],  # unknown version
        value[: len(value) // 2],  # truncated
    ]
    shapes = set()
    with caplog.at_level(logging.DEBUG, logger="sessionware"):
        for candidate in bad:
            reply = call(app, "/read/a", cookie=f"session={candidate}")
            shapes.add((reply.status, reply.body, tuple(sorted(reply.headers))))
    assert len(shapes) == 1
    refusals = [record for record in caplog.records if "refused" in record.getMessage()]
    assert len(refusals) == len(bad)
    assert {record.levelno for record in refusals} == {logging.DEBUG}


def test_sw25_a_value_made_for_another_purpose_or_cookie_is_refused() -> None:
    keys = KeyRing(SECRET)
    cookie_app = build_app(CookieStore(), FakeClock())
    server_app = build_app(MemoryStore(), FakeClock())
    id_value = cookie_value(call(server_app, "/login/alice").cookie())
    assert call(cookie_app, "/read/user", cookie=f"session={id_value}").json() == {"value": None}
    other_name = EncryptedCodec(keys, "other").encode(
        _record.pack(1_767_225_600, 1_767_225_600, None, b"", b'{"user":"alice"}')
    )
    assert call(cookie_app, "/read/user", cookie=f"session={other_name}").json() == {"value": None}


def test_sw25_a_payload_dated_in_the_future_is_refused() -> None:
    clock = FakeClock()
    now = int(clock())
    codec = EncryptedCodec(KeyRing(SECRET), "session")
    app = build_app(CookieStore(), clock)
    future = codec.encode(_record.pack(now, now + 3600, None, b"", b'{"user":"alice"}'))
    assert call(app, "/read/user", cookie=f"session={future}").json() == {"value": None}
    present = codec.encode(_record.pack(now, now, None, b"", b'{"user":"alice"}'))
    assert call(app, "/read/user", cookie=f"session={present}").json() == {"value": "alice"}


def test_sw27_weak_secrets_are_refused_and_nonces_never_repeat() -> None:
    for weak in ("changeme", "secret" * 6, "a" * 64):
        with pytest.raises(ConfigurationError):
            KeyRing(weak)
    codec = EncryptedCodec(KeyRing(SECRET), "session")
    nonces = {b64decode(codec.encode(b"same")[3:])[4:16] for _ in range(10_000)}
    assert len(nonces) == 10_000


# -- H. key rotation -----------------------------------------------------------------


def test_sw28_rotation_reissues_under_the_new_key_and_a_removed_key_fails(store: Any) -> None:
    clock = FakeClock()
    old_app = build_app(store, clock, secret=OLD_SECRET)
    old_pair = call(old_app, "/login/alice").cookie()
    rotated = build_app(store, clock, secret=[SECRET, OLD_SECRET])
    reply = call(rotated, "/read/user", cookie=old_pair)
    assert reply.json() == {"value": "alice"}
    new_pair = reply.cookie()  # re-issued on this very response
    assert new_pair != old_pair
    only_new = build_app(store, clock, secret=SECRET)
    assert call(only_new, "/read/user", cookie=new_pair).json() == {"value": "alice"}
    assert call(only_new, "/read/user", cookie=old_pair).json() == {"value": None}


# -- J. size and parsing ------------------------------------------------------------------


def test_sw36_oversized_cookies_are_refused_out_and_in(
    make_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SessionTooLarge):
        call(build_app(CookieStore(), FakeClock()), "/big/5000")
    decoded: list[str] = []
    for codec in (EncryptedCodec, SignedCodec, IdCodec):

        def spying(self: Any, value: str, original: Any = codec.decode) -> Any:
            decoded.append(value)
            return original(self, value)

        monkeypatch.setattr(codec, "decode", spying)
    app = make_app()
    for size in (4097, 64 * 1024, 1024 * 1024):
        reply = call(app, "/read/a", cookie="session=" + "A" * size)
        assert (reply.status, reply.json()) == (200, {"value": None})
    assert decoded == []


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";"), max_size=400
    )
)
def test_sw37_any_malformed_cookie_is_an_anonymous_session_never_an_error(value: str) -> None:
    for app in FUZZ_APPS:
        for candidate in (value, "e1." + value, "s1." + value, "i1." + value):
            reply = call(app, "/read/a", cookie=f"session={candidate}")
            assert (reply.status, reply.json()) == (200, {"value": None})


FUZZ_APPS = [build_app(CookieStore(), FakeClock()), build_app(CookieStore(encrypt=False), FakeClock())]


def test_sw37_every_truncation_of_a_valid_cookie_is_anonymous(make_app: App) -> None:
    app = make_app()
    value = cookie_value(call(app, "/write/a/1").cookie())
    for length in range(len(value)):
        reply = call(app, "/read/a", cookie=f"session={value[:length]}")
        assert (reply.status, reply.json()) == (200, {"value": None})


# -- K. serialization ----------------------------------------------------------------------


def test_sw38_no_code_constructing_deserializer_is_imported_anywhere() -> None:
    banned = {"pickle", "marshal", "shelve", "dill", "jsonpickle", "cloudpickle", "yaml"}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [f"{path.name}:{a.name}" for a in node.names if a.name.split(".")[0] in banned]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in banned:
                found.append(f"{path.name}:{node.module}")
    assert found == []


class Gadget:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("touch /tmp/sessionware-pwned",))


def test_sw38_a_pickle_payload_under_a_valid_key_executes_nothing(tmp_path: Path) -> None:
    marker = Path("/tmp/sessionware-pwned")
    marker.unlink(missing_ok=True)
    blob = pickle.dumps(Gadget())
    clock = FakeClock()
    now = int(clock())
    codec = EncryptedCodec(KeyRing(SECRET), "session")
    cookie_app = build_app(CookieStore(), clock)
    for payload in (blob, _record.pack(now, now, None, b"", blob)):
        assert call(cookie_app, "/read/a", cookie=f"session={codec.encode(payload)}").json() == {
            "value": None
        }
    # the same blob written straight into a store's rows: as the head, as a field, as the data
    sqlite = SQLiteStore(tmp_path / "s.db", clock=clock)
    memory = MemoryStore()
    text = blob.decode("latin-1")
    for store in (sqlite, memory):
        app = build_app(store, clock)
        for where in ("head", "field", "data"):
            pair = call(app, "/write/a/1").cookie()
            key = IdCodec.store_key(IdCodec(KeyRing(SECRET), "session").decode(cookie_value(pair))[0])
            if store is sqlite:
                with sqlite3.connect(tmp_path / "s.db") as connection:
                    statement = {
                        "head": ("UPDATE sessionware_sessions SET head = ? WHERE key = ?", blob),
                        "field": (
                            "UPDATE sessionware_sessions SET data = ? WHERE key = ?",
                            json.dumps({"a": text}),
                        ),
                        "data": ("UPDATE sessionware_sessions SET data = ? WHERE key = ?", text),
                    }[where]
                    connection.execute(statement[0], (statement[1], key))
            elif where == "head":
                memory._records[key] = memory._records[key]._replace(head=blob)
            else:
                memory._records[key] = memory._records[key]._replace(fields={"a": text})
            assert call(app, "/read/a", cookie=pair).json() == {"value": None}
    assert not marker.exists()


def test_sw38_a_value_that_is_not_json_is_refused_at_write_time_naming_the_key() -> None:
    import datetime

    from sessionware import SerializationError

    for value in (datetime.datetime.now(), {1, 2}, object(), float("nan"), b"bytes"):
        with pytest.raises(SerializationError) as caught:
            _record.dump_data({"fine": 1, "when": value})
        assert caught.value.key == "when"
        assert "'when'" in str(caught.value)


# -- L. store failure ----------------------------------------------------------------


def test_sw39_a_locked_store_fails_closed_and_recovers(tmp_path: Path) -> None:
    app = build_app(SQLiteStore(tmp_path / "s.db", timeout=0.1), FakeClock())
    pair = call(app, "/login/alice").cookie()
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert call(app, "/login/bob").status == 503  # no cookie for a session that does not exist
        assert call(app, "/drop", cookie=pair).status == 503  # a log-out that did not happen is not reported
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert call(app, "/read/user", cookie=pair).json() == {"value": "alice"}


# -- M. concurrency ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_sw40_a_request_that_began_before_logout_cannot_resurrect_the_session(
    tmp_path: Path, kind: str
) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    slow_started = threading.Event()
    logged_out = threading.Event()
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionware import get_session

    async def slow(request: Request) -> PlainTextResponse:
        request.session["cart"] = ["book"]
        slow_started.set()
        logged_out.wait(5)
        return PlainTextResponse("slow")

    async def logout(request: Request) -> PlainTextResponse:
        get_session(request).drop()
        return PlainTextResponse("bye")

    async def login(request: Request) -> PlainTextResponse:
        request.session["user"] = "alice"
        return PlainTextResponse("hi")

    app = SessionMiddleware(
        Starlette(routes=[Route("/slow", slow), Route("/logout", logout), Route("/login", login)]),
        secret_key_base=SECRET,
        store=store,
    )
    pair = call(app, "/login").cookie()
    results: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: results.update(slow=call(app, "/slow", cookie=pair)))
    thread.start()
    assert slow_started.wait(5)
    assert call(app, "/logout", cookie=pair).status == 200
    logged_out.set()
    thread.join(10)
    assert results["slow"].status == 200
    assert results["slow"].set_cookie is None
    reply = call(app, "/login", cookie=pair)
    assert reply.set_cookie is not None
    assert cookie_value(reply.cookie()) != cookie_value(pair)  # the old ID stayed dead


# -- N. hygiene ----------------------------------------------------------------------


def test_sw41_no_cookie_value_or_session_id_reaches_the_logs(
    make_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    secrets_seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        pair = call(app, "/login/alice").cookie()
        secrets_seen.append(cookie_value(pair))
        reply = call(app, "/renew", cookie=pair)
        secrets_seen.append(cookie_value(reply.cookie()))
        call(app, "/read/user", cookie=pair)
        tampered = cookie_value(pair)[:-3] + "AAA"
        call(app, "/read/user", cookie=f"session={tampered}")
        call(app, "/read/user", cookie=f"{pair}; {pair}")
        call(app, "/drop", cookie=reply.cookie())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # something was logged, and none of it is a secret
    for value in [*secrets_seen, tampered]:
        assert value not in text
        assert value[3:40] not in text


def test_sw42_responses_that_set_the_cookie_are_not_cacheable_and_reads_vary(make_app: App) -> None:
    app = make_app()
    login = call(app, "/login/alice")
    assert login.header("cache-control") == "no-store"
    assert login.header("vary") == "Cookie"
    read = call(app, "/read/user", cookie=login.cookie())
    assert read.header("vary") == "Cookie"


def test_sw43_the_encrypted_store_hides_personal_data_and_the_signed_one_documents_that_it_does_not() -> None:
    encrypted = build_app(CookieStore(), FakeClock())
    signed = build_app(CookieStore(encrypt=False), FakeClock())
    marker = "alice@example.com"
    enc_value = cookie_value(call(encrypted, f"/write/email/{marker}").cookie())
    sig_value = cookie_value(call(signed, f"/write/email/{marker}").cookie())
    assert marker.encode() not in b64decode(enc_value[3:])
    assert marker.encode() in b64decode(sig_value[3:].split(".")[0])
    assert "can read" in (CookieStore.__doc__ or "")


def test_secrets_module_is_used_for_generated_secrets() -> None:
    assert len(secrets.token_urlsafe(64)) >= 86  # what gen-secret prints (sanity for the doc claim)
