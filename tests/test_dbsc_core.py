"""DBSC's sans-IO parts with plain calls: Structured Fields, proof JWTs, bindings, bound cookies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from sessionware._codec import b64encode
from sessionware._dbsc_jwt import ProofRefused, parse_proof, public_key, verify
from sessionware._dbsc_sf import inner_list, parse_item, sf_string, string_item
from sessionware._dbsc_state import (
    Binding,
    BoundCookies,
    challenge_age,
    dump_binding,
    load_binding,
    new_challenge,
)
from sessionware._keys import KeyRing
from sessionware.errors import InvalidCookie
from sessionware.testing import DBSCBrowser

from .conftest import OLD_SECRET, SECRET

NOW = 1_767_225_600

# -- Structured Fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ('"abc"', "abc"),
        ("abc", "abc"),  # Chromium's bare form
        ("  abc  ", "abc"),
        ("0-starts_with.a-digit", "0-starts_with.a-digit"),  # not an sf-token, but what is sent
        ('"with \\"quotes\\" and \\\\"', 'with "quotes" and \\'),
        ('"v";id="x"', "v"),  # parameters are allowed and ignored
        ("v;id", "v"),
        ('""', ""),
    ],
)
def test_an_item_is_read_quoted_or_bare(header: str, value: str) -> None:
    assert parse_item(header) == value


@pytest.mark.parametrize(
    "header",
    [None, '"open', '"a"b', "a b", "(a b)", ":Ynl0ZXM=:", "a,b", '"\x01"', "x" * 9000, 'a;"', "ä", "a;ID=1"],
)
def test_anything_else_is_refused(header: str | None) -> None:
    assert parse_item(header) is None


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=64))
def test_an_sf_string_round_trips(value: str) -> None:
    assert parse_item(sf_string(value)) == value


def test_the_registration_and_challenge_headers_are_well_formed() -> None:
    assert inner_list(["ES256", "RS256"], [("path", "/r"), ("challenge", "c")]) == (
        '(ES256 RS256);path="/r";challenge="c"'
    )
    assert string_item("nonce", [("id", "sid")]) == '"nonce";id="sid"'
    with pytest.raises(ValueError, match="token"):
        inner_list(["1bad"], [])
    with pytest.raises(ValueError, match="printable"):
        sf_string("\n")


# -- proofs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> DBSCBrowser:
    return DBSCBrowser(client=None)


def _token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    def part(value: object) -> str:
        return b64encode(json.dumps(value).encode())

    return part(header) + "." + part(payload) + "." + b64encode(signature)


def test_a_good_es256_proof_verifies(browser: DBSCBrowser) -> None:
    proof = parse_proof(browser.proof("c", jwk=True, claims={"authorization": "a", "aud": "ignored"}))
    assert (proof.alg, proof.jti, proof.authorization) == ("ES256", "c", "a")
    key, jwk = public_key(proof.alg, proof.jwk)
    assert set(jwk) == {"kty", "crv", "x", "y"}
    verify(proof, "ES256", key)


def test_a_good_rs256_proof_verifies() -> None:
    browser = DBSCBrowser(None, algorithm="RS256")
    proof = parse_proof(browser.proof("c", jwk=True))
    key, _ = public_key("RS256", proof.jwk)
    verify(proof, "RS256", key)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("a.b", "compact"),
        ("a.b.c.d", "compact"),
        ("x" * 9000, "too large"),
        ("!!.e30.AA", "base64url"),
        (b64encode(b"[1]") + ".e30.AA", "object"),
        (b64encode(b"{bad") + ".e30.AA", "JSON"),
        (_token({"alg": "none", "typ": "dbsc+jwt"}, {"jti": "c"}), "not accepted"),
        (_token({"alg": "HS256", "typ": "dbsc+jwt"}, {"jti": "c"}), "not accepted"),
        (_token({"typ": "dbsc+jwt"}, {"jti": "c"}), "not accepted"),
        (_token({"alg": "ES256", "typ": "JWT"}, {"jti": "c"}), "typ"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt", "crit": ["x"]}, {"jti": "c"}), "critical"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt", "jwk": "k"}, {"jti": "c"}), "jwk"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt"}, {}), "jti"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": 5}), "jti"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": ""}), "jti"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": "c", "authorization": 1}), "authorization"),
        (_token({"alg": "ES256", "typ": "dbsc+jwt"}, {"jti": "c"}, b""), "unsigned"),
    ],
)
def test_malformed_proofs_are_refused_with_a_reason(token: str, reason: str) -> None:
    with pytest.raises(ProofRefused, match=reason):
        parse_proof(token)


def test_a_tampered_or_foreign_proof_fails_verification(browser: DBSCBrowser) -> None:
    token = browser.proof("c", jwk=True)
    proof = parse_proof(token)
    key, _ = public_key("ES256", proof.jwk)
    other = parse_proof(DBSCBrowser(None).proof("c"))
    with pytest.raises(ProofRefused, match="bad signature"):
        verify(other, "ES256", key)
    flipped = proof._replace(signature=bytes([proof.signature[0] ^ 1]) + proof.signature[1:])
    with pytest.raises(ProofRefused, match="bad signature"):
        verify(flipped, "ES256", key)
    with pytest.raises(ProofRefused, match="64 bytes"):
        verify(proof._replace(signature=proof.signature + b"\0"), "ES256", key)
    with pytest.raises(ProofRefused, match="algorithm differs"):
        verify(proof, "RS256", key)


@pytest.mark.parametrize(
    ("alg", "jwk", "reason"),
    [
        ("ES256", None, "no jwk"),
        ("ES256", {"kty": "EC", "crv": "P-384", "x": "", "y": ""}, "P-256"),
        ("ES256", {"kty": "EC", "crv": "P-256", "x": b64encode(b"\1" * 32)}, "y is missing"),
        (
            "ES256",
            {"kty": "EC", "crv": "P-256", "x": b64encode(b"\1" * 31), "y": b64encode(b"\1" * 32)},
            "32 bytes",
        ),
        (
            "ES256",
            {"kty": "EC", "crv": "P-256", "x": b64encode(b"\1" * 32), "y": b64encode(b"\1" * 32)},
            "point",
        ),
        ("RS256", {"kty": "EC"}, "RSA key"),
        ("RS256", {"kty": "RSA", "n": b64encode(b"\x01" * 64), "e": "AQAB"}, "size"),
        ("RS256", {"kty": "RSA", "n": b64encode(b"\x00" + b"\x01" * 256), "e": "AQAB"}, "minimal"),
        ("RS256", {"kty": "RSA", "n": b64encode(b"\xc1" * 256), "e": "Ag"}, "exponent"),
        ("HS256", {"kty": "oct"}, "not accepted"),
    ],
)
def test_bad_keys_are_refused(alg: str, jwk: Any, reason: str) -> None:
    with pytest.raises(ProofRefused, match=reason):
        public_key(alg, jwk)


def test_the_stored_jwk_keeps_only_public_members() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = {**DBSCBrowser.jwk_of(private), "d": "secret", "kid": "x"}
    _, stored = public_key("ES256", jwk)
    assert "d" not in stored
    assert "kid" not in stored
    rsa_jwk = {**DBSCBrowser.jwk_of(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "d": "s"}
    assert set(public_key("RS256", rsa_jwk)[1]) == {"kty", "n", "e"}


# -- bindings, challenges, bound cookies ------------------------------------------------------------

BINDING = Binding("sid", "ES256", {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}, 3, NOW, NOW)


def test_a_binding_round_trips_and_malformed_ones_are_invalid() -> None:
    assert load_binding(dump_binding(BINDING)) == BINDING
    for text in ["{", "[]", '{"v":2}', '{"v":1}', dump_binding(BINDING._replace(alg="none")), "x" * 5000]:
        with pytest.raises(InvalidCookie, match="dbsc binding"):
            load_binding(text)
    with pytest.raises(InvalidCookie):
        load_binding(dump_binding(BINDING._replace(generation="3")))  # type: ignore[arg-type]


def test_a_challenge_carries_its_age() -> None:
    challenge = new_challenge(NOW)
    assert challenge_age(challenge, NOW + 7) == 7
    assert challenge != new_challenge(NOW)
    assert challenge_age("short", NOW) is None
    assert challenge_age("!" * 54, NOW) is None


def test_a_bound_cookie_is_checked_against_the_clock_the_session_and_the_generation() -> None:
    cookies = BoundCookies(KeyRing(SECRET), "session")
    value = cookies.make("sid", NOW + 10, 3)
    assert cookies.check(value, BINDING, NOW) is None
    assert cookies.check(value, BINDING, NOW + 10) is None  # through the second it expires in
    assert cookies.check(value, BINDING, NOW + 11) == "bound cookie expired"
    assert cookies.check(value, BINDING._replace(identifier="other"), NOW) is not None
    assert cookies.check(value, BINDING._replace(generation=4), NOW) is None  # one behind
    assert cookies.check(value, BINDING._replace(generation=5), NOW) == "bound cookie of an older generation"
    for bad in ["", "b1.", "b2." + value[3:], value[:-1], value + "A", value[:-2] + "AA", "b1." + "A" * 200]:
        assert cookies.check(bad, BINDING, NOW) is not None
    assert BoundCookies(KeyRing(OLD_SECRET), "session").check(value, BINDING, NOW) is not None
    # Made under the secret that is now the second: still valid until it expires.
    assert BoundCookies(KeyRing([OLD_SECRET, SECRET]), "session").check(value, BINDING, NOW) is None
    assert BoundCookies(KeyRing(SECRET), "other-cookie").check(value, BINDING, NOW) is not None


# -- whatever arrives: a refusal, never another exception (SW-37) ---------------------------------------


@given(st.text(max_size=300))
def test_any_header_text_is_an_item_or_none(text: str) -> None:
    value = parse_item(text)
    assert value is None or isinstance(value, str)


@given(
    st.one_of(
        st.text(max_size=300), st.lists(st.binary(max_size=80).map(b64encode), max_size=4).map(".".join)
    )
)
def test_any_token_parses_or_is_refused(token: str) -> None:
    try:
        proof = parse_proof(token)
    except ProofRefused:
        return
    assert proof.alg in ("ES256", "RS256")


_JWK_VALUES = st.one_of(
    st.sampled_from(["EC", "RSA", "P-256", "P-384", "AQAB", ""]),
    st.binary(max_size=300).map(b64encode),
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_HEADERS = st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["ES256", "RS256", "none", "HS256"]),
        "typ": st.sampled_from(["dbsc+jwt", "JWT"]),
    },
    optional={
        "jwk": st.one_of(
            st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "n", "e"]), _JWK_VALUES, max_size=6),
            _JWK_VALUES,
        )
    },
)


@given(_HEADERS, st.dictionaries(st.sampled_from(["jti", "authorization", "aud"]), _JWK_VALUES))
def test_any_json_header_and_key_parse_or_are_refused(
    header: dict[str, Any], payload: dict[str, Any]
) -> None:
    """Whatever the shapes, a ProofRefused (a 400) and nothing else: never a 500."""
    try:
        proof = parse_proof(_token(header, payload))
        key, _ = public_key(proof.alg, proof.jwk)
        verify(proof, proof.alg, key)
    except ProofRefused:
        return
    raise AssertionError("a made-up signature verified")
