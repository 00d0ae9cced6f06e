"""Cookie formats: round trips, tampering, keys, rotation, purpose binding."""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionware._codec import EncryptedCodec, IdCodec, SignedCodec, b64decode, b64encode
from sessionware._keys import KeyRing
from sessionware.errors import InvalidCookie

from .conftest import OLD_SECRET, OTHER_SECRET, SECRET

Codec = EncryptedCodec | SignedCodec
PAYLOAD = b'\x01{"user":"alice","cart":[1,2,3]}'
B64_ALPHABET = string.ascii_letters + string.digits + "-_"
NOT_B64 = ["+", "/", "=", ".", "%", " ", "\x00", "\x7f", "é", '"', ";"]


@pytest.fixture(params=[EncryptedCodec, SignedCodec], ids=["encrypted", "signed"])
def codec_class(request: pytest.FixtureRequest) -> type[Codec]:
    return request.param  # type: ignore[no-any-return]


def make(codec_class: type[Codec], secrets: str | list[str] = SECRET, name: str = "session") -> Codec:
    return codec_class(KeyRing(secrets), name)


def decodes(decode: Callable[[str], object], value: str) -> bool:
    try:
        decode(value)
    except InvalidCookie:
        return False
    return True


def variants(value: str) -> list[str]:
    """Every value that differs from ``value`` in exactly one character."""
    out = []
    for index, original in enumerate(value):
        for replacement in B64_ALPHABET + "." + "".join(NOT_B64):
            if replacement != original:
                out.append(value[:index] + replacement + value[index + 1 :])
    return out


def test_a_cookie_round_trips_and_is_not_stale(codec_class: type[Codec]) -> None:
    codec = make(codec_class)
    assert codec.decode(codec.encode(PAYLOAD)) == (PAYLOAD, False)


def test_values_carry_their_version_tag(codec_class: type[Codec]) -> None:
    value = make(codec_class).encode(PAYLOAD)
    assert value.startswith(codec_class.tag)


def test_every_single_character_change_is_refused(codec_class: type[Codec]) -> None:
    codec = make(codec_class)
    value = codec.encode(PAYLOAD)
    accepted = [v for v in variants(value) if decodes(codec.decode, v)]
    assert accepted == []


def test_every_single_character_change_of_a_server_side_id_is_refused() -> None:
    ids = IdCodec(KeyRing(SECRET), "session")
    value = ids.encode(IdCodec.new_id())
    accepted = [v for v in variants(value) if decodes(ids.decode, v)]
    assert accepted == []


def test_every_truncation_is_refused(codec_class: type[Codec]) -> None:
    codec = make(codec_class)
    value = codec.encode(PAYLOAD)
    assert not any(decodes(codec.decode, value[:length]) for length in range(len(value)))


def test_appended_or_prepended_characters_are_refused(codec_class: type[Codec]) -> None:
    codec = make(codec_class)
    value = codec.encode(PAYLOAD)
    for extra in ["A", "AA", "AAAA", ".", "=", "=="]:
        assert not decodes(codec.decode, value + extra)
        assert not decodes(codec.decode, extra + value)


def test_a_cookie_made_with_another_secret_is_refused(codec_class: type[Codec]) -> None:
    value = make(codec_class, OTHER_SECRET).encode(PAYLOAD)
    with pytest.raises(InvalidCookie) as caught:
        make(codec_class).decode(value)
    assert caught.value.reason == "key"


def test_a_cookie_made_for_another_cookie_name_is_refused(codec_class: type[Codec]) -> None:
    value = make(codec_class, name="other").encode(PAYLOAD)
    assert not decodes(make(codec_class).decode, value)


def test_rotation_old_secret_still_verifies_and_is_reported_stale(codec_class: type[Codec]) -> None:
    old_cookie = make(codec_class, OLD_SECRET).encode(PAYLOAD)
    rotated = make(codec_class, [SECRET, OLD_SECRET])
    assert rotated.decode(old_cookie) == (PAYLOAD, True)
    fresh = rotated.encode(PAYLOAD)
    assert make(codec_class, SECRET).decode(fresh) == (PAYLOAD, False)


def test_a_removed_secret_no_longer_verifies(codec_class: type[Codec]) -> None:
    old_cookie = make(codec_class, OLD_SECRET).encode(PAYLOAD)
    assert not decodes(make(codec_class, [SECRET]).decode, old_cookie)


def test_swapping_the_key_id_to_another_listed_secret_fails_the_mac(codec_class: type[Codec]) -> None:
    ring = KeyRing([SECRET, OLD_SECRET])
    old_id = KeyRing(OLD_SECRET).current_id
    codec = codec_class(KeyRing(OLD_SECRET), "session")
    value = codec.encode(PAYLOAD)
    raw = b64decode(value[3:] if codec_class is EncryptedCodec else value.rsplit(".", 1)[1])
    assert raw.startswith(old_id)
    swapped = ring.current_id + raw[4:]
    if codec_class is EncryptedCodec:
        forged = "e1." + b64encode(swapped)
    else:
        forged = value.rsplit(".", 1)[0] + "." + b64encode(swapped)
    with pytest.raises(InvalidCookie) as caught:
        codec_class(ring, "session").decode(forged)
    assert caught.value.reason == "mac"


def test_a_value_of_one_format_is_refused_by_the_others() -> None:
    ring = KeyRing(SECRET)
    encrypted, signed, ids = EncryptedCodec(ring, "s"), SignedCodec(ring, "s"), IdCodec(ring, "s")
    samples = {"e": encrypted.encode(PAYLOAD), "s": signed.encode(PAYLOAD), "i": ids.encode(IdCodec.new_id())}
    decoders = {"e": encrypted.decode, "s": signed.decode, "i": ids.decode}
    for made, value in samples.items():
        for used, decode in decoders.items():
            assert decodes(decode, value) == (made == used), (made, used)


def test_a_forged_algorithm_tag_or_empty_mac_is_refused() -> None:
    signed = SignedCodec(KeyRing(SECRET), "session")
    value = signed.encode(PAYLOAD)
    body = value.rsplit(".", 1)[0]
    for forged in [body + ".", body, "s0" + value[2:], "none." + value[3:], "S1" + value[2:]]:
        assert not decodes(signed.decode, forged), forged


def test_encrypted_cookies_hide_the_payload_and_signed_ones_do_not() -> None:
    secret_marker = b'{"email":"alice@example.com"}'
    encrypted = EncryptedCodec(KeyRing(SECRET), "session").encode(secret_marker)
    signed = SignedCodec(KeyRing(SECRET), "session").encode(secret_marker)
    assert b"alice@example.com" not in b64decode(encrypted[3:])
    assert b"alice@example.com" in b64decode(signed[3:].split(".")[0])


def test_nonces_and_ciphertexts_never_repeat() -> None:
    codec = EncryptedCodec(KeyRing(SECRET), "session")
    values = [b64decode(codec.encode(PAYLOAD)[3:]) for _ in range(10_000)]
    nonces = {value[4:16] for value in values}
    assert len(nonces) == 10_000
    assert len(set(values)) == 10_000


def test_server_side_ids_are_256_random_bits_and_stores_see_only_a_hash() -> None:
    ids = IdCodec(KeyRing(SECRET), "session")
    session_id = IdCodec.new_id()
    assert len(session_id) == 40  # an 8-byte group, then 32 random bytes
    key = IdCodec.store_key(session_id)
    group, digest = key.split("/")
    assert b64decode(group) == session_id[:8]
    assert b64encode(session_id[8:]) not in key
    assert len(b64decode(digest)) == 32
    assert ids.decode(ids.encode(session_id)) == (session_id, False)


@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_with_invalid_cookie_only(text: str) -> None:
    ring = KeyRing(SECRET)
    for codec in (EncryptedCodec(ring, "s"), SignedCodec(ring, "s"), IdCodec(ring, "s")):
        for candidate in (text, codec.tag + text, "s1." + text + "." + text):
            with contextlib.suppress(InvalidCookie):  # anything else fails the test
                codec.decode(candidate)


@given(st.binary(max_size=200))
def test_base64url_round_trips_and_padding_is_refused(data: bytes) -> None:
    text = b64encode(data)
    assert "=" not in text
    assert b64decode(text) == data
    if len(data) % 3:
        with pytest.raises(InvalidCookie):
            b64decode(text + "=" * (-len(text) % 4))


def test_non_canonical_base64_trailing_bits_are_refused() -> None:
    text = b64encode(b"ab")  # 3 characters; the last carries 2 unused bits
    assert b64decode(text) == b"ab"
    same_bytes = []
    for other in B64_ALPHABET:
        candidate = text[:-1] + other
        if other != text[-1] and decodes(b64decode, candidate) and b64decode(candidate) == b"ab":
            same_bytes.append(candidate)
    assert same_bytes == []
