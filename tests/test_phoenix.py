"""sessionware.phoenix: read and write the cookies Plug.Session makes, checked against real Plug output.

The vectors in tests/data/phoenix/ were made by Plug 1.19.2 / plug_crypto 2.1.1 and
Plug 1.14.2 / plug_crypto 1.2.5 (see the README beside them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from sessionware import ConfigurationError, SerializationError, _plug
from sessionware._codec import b64encode
from sessionware._etf import from_typed_json, to_typed_json
from sessionware.phoenix import Atom, decode_cookie, encode_cookie, term_to_binary

DATA = Path(__file__).parent / "data" / "phoenix"
VECTORS = [json.loads(line) for line in (DATA / "plug_cookies_public.jsonl").read_text().splitlines()]
BY_ID = {vector["id"]: vector for vector in VECTORS}
OK = [vector for vector in VECTORS if vector["expect"] == "ok"]
REJECT = [vector for vector in VECTORS if vector["expect"] == "reject"]
TYPICAL = BY_ID["pub-signed-phoenix-typical"]

# Plug's own test fixtures (plug test/plug/session/cookie_test.exs).
PLUG_SECRET = "abcdef0123456789" * 8


def settings(vector: dict[str, Any]) -> dict[str, Any]:
    """A vector's reading configuration as decode_cookie/encode_cookie keywords."""
    key_opts = vector["key_opts"]
    return {
        "secret_key_base": vector["secret_key_base"],
        "signing_salt": vector["signing_salt"],
        "encryption_salt": vector["encryption_salt"],
        "key_iterations": key_opts["iterations"],
        "key_length": key_opts["length"],
        "key_digest": key_opts["digest"],
    }


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [vector["id"] for vector in vectors]


def signed_payload(token: str) -> bytes:
    payload = _plug.b64url_decode(token.split(".")[1])
    assert payload is not None
    return payload


def resign(payload: bytes, vector: dict[str, Any] = TYPICAL) -> str:
    """A signed cookie carrying ``payload`` with a valid MAC under the vector's key."""
    return _plug.sign(payload, bytes.fromhex(vector["derived_keys"]["signing_key_hex"]))


# -- the vectors -------------------------------------------------------------------------


def test_the_vector_file_is_complete() -> None:
    assert len(VECTORS) == 29
    assert len(OK) == 23
    assert len(REJECT) == 6
    assert {vector["format"] for vector in VECTORS} == {"SFMyNTY", "SFM1MTI", "XCP", "A128GCM"}


@pytest.mark.parametrize("vector", OK, ids=ids(OK))
def test_every_ok_vector_decodes_to_its_typed_session(vector: dict[str, Any]) -> None:
    session = decode_cookie(vector["cookie"], **settings(vector))
    assert session is not None
    assert to_typed_json(session) == vector["session_typed"]


@pytest.mark.parametrize("vector", REJECT, ids=ids(REJECT))
def test_every_reject_vector_yields_none(vector: dict[str, Any]) -> None:
    assert decode_cookie(vector["cookie"], **settings(vector)) is None


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_keys_are_derived_as_plug_crypto_derives_them(vector: dict[str, Any]) -> None:
    options = settings(vector)
    derived = vector["derived_keys"]
    derive = _plug.derive_key
    secret = options["secret_key_base"].encode()
    rest = (options["key_iterations"], options["key_length"], options["key_digest"])
    assert derive(secret, options["signing_salt"].encode(), *rest).hex() == derived["signing_key_hex"]
    if options["encryption_salt"] is not None:
        assert (
            derive(secret, options["encryption_salt"].encode(), *rest).hex() == derived["encryption_key_hex"]
        )


REPRODUCIBLE = [
    vector
    for vector in OK
    if vector["format"] == "SFMyNTY"
    and vector["producer"] != "mutation"
    and len(vector["session_typed"]) <= 32  # larger maps are hash-ordered by OTP
]


@pytest.mark.parametrize("vector", REPRODUCIBLE, ids=ids(REPRODUCIBLE))
def test_signed_vectors_re_encode_to_the_identical_cookie(vector: dict[str, Any]) -> None:
    session = decode_cookie(vector["cookie"], **settings(vector))
    assert session is not None
    minor_version = 2 if vector["id"].endswith("etf-minor-version-2") else 1
    assert encode_cookie(session, **settings(vector), minor_version=minor_version) == vector["cookie"]
    # ... and from the typed JSON alone, not just from what was decoded.
    typed = from_typed_json(vector["session_typed"])
    assert encode_cookie(typed, **settings(vector), minor_version=minor_version) == vector["cookie"]


def test_the_reproducible_set_covers_every_signed_kind_of_vector() -> None:
    assert len(REPRODUCIBLE) == 12
    assert BY_ID["pub-signed-large-near-4k"] not in REPRODUCIBLE


def test_a_mutated_cookie_re_encodes_to_the_cookie_it_was_mutated_from() -> None:
    vector = BY_ID["pub-ok-signed-signature-trailing-bits"]
    session = decode_cookie(vector["cookie"], **settings(vector))
    assert session is not None
    assert vector["cookie"] != BY_ID[vector["base_id"]]["cookie"]
    assert encode_cookie(session, **settings(vector)) == BY_ID[vector["base_id"]]["cookie"]


SIGNED_OK = [vector for vector in OK if vector["format"] in ("SFMyNTY", "SFM1MTI")]


@pytest.mark.parametrize("vector", SIGNED_OK, ids=ids(SIGNED_OK))
def test_a_signed_cookie_carries_term_to_binary_of_its_session(vector: dict[str, Any]) -> None:
    expected = vector.get("payload_hex") or vector["etf_hex"]
    assert signed_payload(vector["cookie"]).hex() == expected


def test_hmac_sha512_cookies_are_read_but_sha256_is_written() -> None:
    vector = BY_ID["pub-signed-hmac-sha512-accepted"]
    session = decode_cookie(vector["cookie"], **settings(vector))
    assert session is not None
    written = encode_cookie(session, **settings(vector))
    assert written.startswith("SFMyNTY.")
    assert written == TYPICAL["cookie"]  # the same session, as Plug.Session writes it
    # Relabelling an HS512 cookie as HS256 breaks it, as in plug_crypto's tests.
    assert decode_cookie("SFMyNTY" + vector["cookie"][7:], **settings(vector)) is None


def test_a_large_map_is_rewritten_sorted_and_still_within_4096_bytes() -> None:
    vector = BY_ID["pub-signed-large-near-4k"]
    session = decode_cookie(vector["cookie"], **settings(vector))
    assert session is not None
    written = encode_cookie(session, **settings(vector))
    assert len(written) == len(vector["cookie"])  # same bytes, another order
    assert decode_cookie(written, **settings(vector)) == session


# -- Plug's own test vectors (plug_crypto's suite) and worked examples --------------------


@pytest.mark.parametrize(
    ("secret", "salt", "iterations", "length", "digest", "expected"),
    [
        (b"password", b"salt", 1, 20, "sha", "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
        (b"password", b"salt", 2, 20, "sha", "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
        (b"password", b"salt", 4096, 20, "sha", "4b007901b765489abead49d926f721d065a429c1"),
        (
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            25,
            "sha",
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        ),
        (b"pass\0word", b"sa\0lt", 4096, 16, "sha", "56fa6aa75548099dcc37d7f03425e0c3"),
        (
            b"password",
            b"salt",
            1000,
            32,
            "sha",
            "6e88be8bad7eae9d9e10aa061224034fed48d03fcbad968b56006784539d5214",
        ),
        (
            b"password",
            b"salt",
            1000,
            32,
            "sha256",
            "632c2812e46d4604102ba7618e9d6d7d2f8128f6266b4a03264d2a0460b7dcb3",
        ),
        (b"password", b"salt", 1, 16, "sha224", "3c198cbdb9464b7857966bd05b7bc92b"),
        (b"password", b"salt", 1, 16, "sha256", "120fb6cffcf8b32c43e7225256c4f837"),
        (b"password", b"salt", 1, 16, "sha384", "c0e14f06e49e32d73f9f52ddf1d0c5c7"),
        (b"password", b"salt", 1, 16, "sha512", "867f70cf1ade02cff3752599a3a53dc4"),
    ],
)
def test_key_derivation_matches_plug_crypto_key_generator(
    secret: bytes, salt: bytes, iterations: int, length: int, digest: str, expected: str
) -> None:
    assert _plug.derive_key(secret, salt, iterations, length, digest).hex() == expected


def test_plug_crypto_1x_message_encryptor_vector_decrypts() -> None:
    old_message = (
        "QTEyOEdDTQ.L85cCXPvSqswNJoxmP5QTopFY83qCPj9czxkwct8b0HDHdC8Qwruhkq3SWw."
        "mmqfbc2dfaMMi6Xi.n1qvYhAUYI0r7-QB6Vw.0jV2tT3U-AQMAQSch2rNsw"
    )
    right, wrong = b"abcdefgh" * 4, b"12345678" * 4
    decrypt = _plug.a128gcm_decrypt
    assert decrypt(old_message, right, right, b"right aad") == "\0hełłoworld\0".encode()
    assert decrypt(old_message, right, right, b"wrong aad") is None
    assert decrypt(old_message, wrong, right, b"right aad") is None
    assert decrypt(old_message, right, wrong, b"right aad") is None


def test_plug_crypto_message_verifier_shapes() -> None:
    token = _plug.sign(b"hello world", b"secret")
    protected, payload, signature = token.split(".")
    assert _plug.b64url_decode(protected) == b"HS256"
    assert _plug.b64url_decode(payload) == b"hello world"
    assert len(signature) == 43
    assert _plug.verify(token, b"secret") == b"hello world"
    assert _plug.verify(token, b"secreto") is None


def test_the_worked_example_of_the_plug_test_secret() -> None:
    cookie = encode_cookie({"foo": "bar"}, secret_key_base=PLUG_SECRET, signing_salt="signing salt")
    assert cookie == "SFMyNTY.g3QAAAABbQAAAANmb29tAAAAA2Jhcg.qE9QGvTlm3Z51Q8gYQFJdWV6fYMMzj9-O3xwWadrvO0"


def test_a_phx_gen_auth_session_is_written_as_otp_25_or_26_writes_it() -> None:
    session = {
        "_csrf_token": "Xhg5-nYSKQO5WYsCMLMV6GHu",
        "live_socket_id": "users_sessions:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "user_remember_me": True,
        "user_token": bytes(range(32)),
    }
    options: dict[str, Any] = {"secret_key_base": PLUG_SECRET, "signing_salt": "signing salt"}
    otp26 = encode_cookie(session, **options, minor_version=2)
    otp25 = encode_cookie(session, **options)
    assert otp26.endswith(".QEpGht7ikKf39z7c0qgcnVgxri1SAIOpMLBKCxmPkCg")
    assert otp25.endswith(".zyvc5m_5spdey2vDTYuiZ1dehE-NxmN82_6ubnkDCd0")
    # PLUG.md: 213 and 214 bytes of ETF; a signed cookie is 8 + ceil(4n/3) + 1 + 43 characters.
    assert (len(otp26), len(otp25)) == (8 + 284 + 1 + 43, 8 + 286 + 1 + 43)
    assert decode_cookie(otp26, **options) == decode_cookie(otp25, **options)


# -- round trips in every write format --------------------------------------------------

SESSION = {
    "_csrf_token": "_TwMfeXgSWLXnZilqb7G5e5w",
    "user_token": bytes(range(200, 232)),
    "live_socket_id": "users_sessions:LaDhOarebiwyVpGN5O_40Rx_xFnBZjjyR9o-HXTiOto=",
    "phoenix_flash": {"info": "Welcome back!"},
    "current_user": {Atom("id"): 42, Atom("roles"): [Atom("admin")], Atom("nil_is"): None},
    "signed_at": 1_645_504_691_156,
    "ratio": -0.0,
    "pair": (1, "two"),
    "日本": "ünïcödé",
}
SIGNED: dict[str, Any] = {"secret_key_base": PLUG_SECRET, "signing_salt": "signing salt"}
ENCRYPTED: dict[str, Any] = {**SIGNED, "encryption_salt": "encrypted cookie salt"}


@pytest.mark.parametrize(
    ("options", "format", "prefix"),
    [(SIGNED, "signed", "SFMyNTY."), (ENCRYPTED, "xcp", "XCP."), (ENCRYPTED, "a128gcm", "QTEyOEdDTQ.")],
)
def test_every_write_format_round_trips(options: dict[str, Any], format: str, prefix: str) -> None:
    cookie = encode_cookie(SESSION, **options, format=format)
    assert cookie.startswith(prefix)
    decoded = decode_cookie(cookie, **options)
    assert decoded == SESSION
    assert decoded is not None
    assert type(decoded["user_token"]) is bytes
    assert type(decoded["pair"]) is tuple


def test_the_default_write_format_follows_the_encryption_salt() -> None:
    assert encode_cookie({}, **SIGNED).startswith("SFMyNTY.")
    assert encode_cookie({}, **ENCRYPTED).startswith("XCP.")


def test_encrypted_cookies_use_a_fresh_nonce_but_signed_ones_are_deterministic() -> None:
    assert encode_cookie(SESSION, **ENCRYPTED) != encode_cookie(SESSION, **ENCRYPTED)
    assert encode_cookie(SESSION, **ENCRYPTED, format="a128gcm") != encode_cookie(
        SESSION, **ENCRYPTED, format="a128gcm"
    )
    assert encode_cookie(SESSION, **SIGNED) == encode_cookie(SESSION, **SIGNED)


def test_an_encrypted_session_is_not_readable_from_the_cookie() -> None:
    for format in ("xcp", "a128gcm"):
        cookie = encode_cookie({"secret": "hunter2-hunter2"}, **ENCRYPTED, format=format)
        assert "hunter2" not in cookie
        assert b"hunter2" not in b"".join(_plug.b64url_decode(part) or b"" for part in cookie.split("."))


def test_signed_and_encrypted_configurations_refuse_each_others_cookies() -> None:
    assert decode_cookie(encode_cookie(SESSION, **SIGNED), **ENCRYPTED) is None
    for format in ("xcp", "a128gcm"):
        assert decode_cookie(encode_cookie(SESSION, **ENCRYPTED, format=format), **SIGNED) is None


def test_xcp_ignores_the_signing_salt_but_a128gcm_binds_it_as_plug_does() -> None:
    other_signing = {**ENCRYPTED, "signing_salt": "another signing salt"}
    assert decode_cookie(encode_cookie(SESSION, **ENCRYPTED, format="xcp"), **other_signing) == SESSION
    assert decode_cookie(encode_cookie(SESSION, **ENCRYPTED, format="a128gcm"), **other_signing) is None


def test_wrong_secrets_and_salts_yield_none() -> None:
    other_secret = "z" * 64
    for options, format in ((SIGNED, "signed"), (ENCRYPTED, "xcp"), (ENCRYPTED, "a128gcm")):
        cookie = encode_cookie(SESSION, **options, format=format)
        assert decode_cookie(cookie, **{**options, "secret_key_base": other_secret}) is None
        salt = "encryption_salt" if format != "signed" else "signing_salt"
        assert decode_cookie(cookie, **{**options, salt: "other salt"}) is None


# -- key options ----------------------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha", "sha224", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize(("iterations", "length"), [(1, 20), (2000, 64)])
def test_key_options_round_trip_and_must_match(digest: str, iterations: int, length: int) -> None:
    options = {**SIGNED, "key_iterations": iterations, "key_length": length, "key_digest": digest}
    cookie = encode_cookie(SESSION, **options)
    assert decode_cookie(cookie, **options) == SESSION
    assert decode_cookie(cookie, **SIGNED) is None
    assert decode_cookie(cookie, **{**options, "key_iterations": iterations + 1}) is None


def test_the_key_length_decides_which_encrypted_formats_can_be_written() -> None:
    for length in (16, 24, 64):  # plug_crypto 1.x: AES-128/192 wrap, or a key cut to 32 bytes
        options = {**ENCRYPTED, "key_length": length}
        assert decode_cookie(encode_cookie(SESSION, **options, format="a128gcm"), **options) == SESSION
    with pytest.raises(ConfigurationError, match="key_length 32"):
        encode_cookie(SESSION, **ENCRYPTED, key_length=64)  # plug_crypto 2.x raises too
    with pytest.raises(ConfigurationError, match="16, 24 or at least 32"):
        encode_cookie(SESSION, **ENCRYPTED, key_length=20, format="a128gcm")


def test_an_xcp_cookie_does_not_open_with_a_key_of_another_length() -> None:
    cookie = encode_cookie(SESSION, **ENCRYPTED)
    assert decode_cookie(cookie, **ENCRYPTED, key_length=64) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"secret_key_base": "short"}, "at least 64 bytes"),
        ({"secret_key_base": 12}, "str or bytes"),
        ({"signing_salt": None}, "str or bytes"),
        ({"key_iterations": 0}, "integer >= 1"),
        ({"key_iterations": 1.0}, "integer >= 1"),
        ({"key_length": 0}, "from 1 to"),
        ({"key_digest": "md5"}, "one of"),
    ],
)
def test_invalid_options_raise_configuration_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        decode_cookie(TYPICAL["cookie"], **{**SIGNED, **overrides})
    with pytest.raises(ConfigurationError, match=message):
        encode_cookie({}, **{**SIGNED, **overrides})


def test_plug_digest_spellings_are_accepted() -> None:
    assert decode_cookie(TYPICAL["cookie"], **{**settings(TYPICAL), "key_digest": ":sha256"}) is not None
    assert decode_cookie(TYPICAL["cookie"], **{**settings(TYPICAL), "key_digest": "SHA256"}) is not None


def test_encode_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="format"):
        encode_cookie({}, **SIGNED, format="xcp")
    with pytest.raises(ConfigurationError, match="format"):
        encode_cookie({}, **ENCRYPTED, format="signed")
    with pytest.raises(ConfigurationError, match="format"):
        encode_cookie({}, **SIGNED, format="jwt")
    with pytest.raises(ConfigurationError, match="minor_version"):
        encode_cookie({}, **SIGNED, minor_version=3)


def test_values_with_no_erlang_term_raise_a_serialization_error_naming_the_key() -> None:
    with pytest.raises(SerializationError, match=r"session\['tags'\]") as caught:
        encode_cookie({"ok": 1, "tags": {"a", "b"}}, **SIGNED)
    assert "Plug session" in str(caught.value)
    with pytest.raises(SerializationError, match="is a map"):
        encode_cookie([("a", 1)], **SIGNED)  # type: ignore[arg-type]


def test_decode_expects_a_str_cookie() -> None:
    cookie: Any = TYPICAL["cookie"].encode()
    with pytest.raises(TypeError, match="str"):
        decode_cookie(cookie, **SIGNED)


# -- what Plug accepts and refuses -----------------------------------------------------


def test_padding_the_signature_is_accepted_but_padding_the_payload_is_not() -> None:
    cookie = encode_cookie({"a": 1}, **SIGNED)  # 14 bytes of ETF: its base64 would need padding
    header, payload, signature = cookie.split(".")
    assert len(signature) % 4 == 3
    assert decode_cookie(f"{header}.{payload}.{signature}=", **SIGNED) == {"a": 1}
    assert len(payload) % 4 != 0
    padded_payload = payload + "=" * (-len(payload) % 4)
    assert decode_cookie(f"{header}.{padded_payload}.{signature}", **SIGNED) is None


def test_base64_in_the_standard_alphabet_or_with_wrong_padding_is_refused() -> None:
    cookie = TYPICAL["cookie"]
    header, payload, signature = cookie.split(".")
    assert decode_cookie(f"{header}.{payload}.{signature}==", **settings(TYPICAL)) is None
    standard = signature.replace("-", "+").replace("_", "/")
    if standard != signature:
        assert decode_cookie(f"{header}.{payload}.{standard}", **settings(TYPICAL)) is None
    assert decode_cookie(f"{header}.{payload}.{signature}.", **settings(TYPICAL)) is None
    assert decode_cookie(f"{header}.{payload}", **settings(TYPICAL)) is None


def test_trailing_bits_of_an_encrypted_cookie_are_ignored_too() -> None:
    session = {"ab": 1}  # 15 bytes of ETF: nonce, tag and term are 55 bytes, not a multiple of 3
    cookie = encode_cookie(session, **ENCRYPTED)
    body = cookie[len("XCP.") :]
    assert len(body) % 4 == 2  # the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    mutated = "XCP." + body[:-1] + alphabet[alphabet.index(body[-1]) ^ 0b1111]
    assert mutated != cookie
    assert decode_cookie(mutated, **ENCRYPTED) == session
    flipped_used_bit = "XCP." + body[:-1] + alphabet[alphabet.index(body[-1]) ^ 0b10000]
    assert decode_cookie(flipped_used_bit, **ENCRYPTED) is None


def test_bytes_after_the_term_are_ignored_as_plug_ignores_them() -> None:
    cookie = resign(bytes.fromhex(TYPICAL["etf_hex"]) + b"junk")
    assert to_typed_json(decode_cookie(cookie, **settings(TYPICAL))) == TYPICAL["session_typed"]


def test_a_compressed_term_is_accepted() -> None:
    body = bytes.fromhex(TYPICAL["etf_hex"])[1:]
    payload = b"\x83P" + len(body).to_bytes(4, "big") + zlib.compress(body)
    assert to_typed_json(decode_cookie(resign(payload), **settings(TYPICAL))) == TYPICAL["session_typed"]


def test_a_compressed_term_inflating_beyond_64_kib_is_refused() -> None:
    body = term_to_binary({"big": "x" * 70_000})[1:]
    payload = b"\x83P" + len(body).to_bytes(4, "big") + zlib.compress(body)
    assert decode_cookie(resign(payload), **settings(TYPICAL)) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not a term",
        bytes.fromhex(TYPICAL["etf_hex"])[1:],  # no version byte
        b"\x83" + bytes([112]) + b"\x00" * 60,  # a fun
        b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x01aX" + b"\x00" * 40,  # %{"a" => a pid}
        term_to_binary([1, 2, 3]),  # a term, but not a map
        term_to_binary("session"),
        b"",
    ],
)
def test_a_validly_signed_payload_plug_refuses_yields_none(payload: bytes) -> None:
    assert decode_cookie(resign(payload), **settings(TYPICAL)) is None


def test_an_empty_session_decodes_to_an_empty_dict_not_none() -> None:
    assert decode_cookie(BY_ID["pub-signed-empty"]["cookie"], **settings(TYPICAL)) == {}


def test_the_cookie_name_is_not_bound_into_the_value() -> None:
    # decode_cookie takes no name; the vectors read under another key read the same.
    vector = BY_ID["pub-signed-opts-sha512-len64-iter2000"]
    assert vector["key"] != TYPICAL["key"]
    assert decode_cookie(vector["cookie"], **settings(vector)) is not None


def test_the_mac_covers_the_base64_text_not_the_decoded_bytes() -> None:
    header, payload, _ = TYPICAL["cookie"].split(".")
    key = bytes.fromhex(TYPICAL["derived_keys"]["signing_key_hex"])
    mac = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert TYPICAL["cookie"] == f"{header}.{payload}.{b64encode(mac)}"
