"""sessionware._etf: Erlang's External Term Format, decoded safely and encoded as OTP does."""

from __future__ import annotations

import enum
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionware._etf import (
    MAX_BIGNUM_BYTES,
    MAX_DEPTH,
    Atom,
    BitString,
    EtfError,
    ImproperList,
    binary_to_term,
    from_typed_json,
    term_to_binary,
    to_typed_json,
)
from sessionware.errors import SessionError

VECTORS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "phoenix" / "plug_cookies_public.jsonl")
    .read_text()
    .splitlines()
]
OK = [vector for vector in VECTORS if vector["expect"] == "ok"]


def etf(hex_body: str) -> bytes:
    """A term: the version byte and ``hex_body``."""
    return b"\x83" + bytes.fromhex(hex_body)


def compressed(term: bytes, declared: int | None = None) -> bytes:
    """``term_to_binary(..., [:compressed])``'s layout for an encoded ``term``."""
    body = term[1:]
    size = len(body) if declared is None else declared
    return b"\x83P" + struct.pack(">I", size) + zlib.compress(body)


# -- the vectors: real term_to_binary output --------------------------------------------


@pytest.mark.parametrize("vector", OK, ids=[vector["id"] for vector in OK])
def test_every_vector_term_decodes_to_its_typed_session(vector: dict[str, Any]) -> None:
    assert to_typed_json(binary_to_term(bytes.fromhex(vector["etf_hex"]))) == vector["session_typed"]


SORTED = [vector for vector in OK if len(vector["session_typed"]) <= 32]


@pytest.mark.parametrize("vector", SORTED, ids=[vector["id"] for vector in SORTED])
def test_maps_of_up_to_32_keys_encode_to_the_bytes_otp_25_wrote(vector: dict[str, Any]) -> None:
    assert term_to_binary(from_typed_json(vector["session_typed"])).hex() == vector["etf_hex"]


def test_a_map_of_more_than_32_keys_decodes_in_any_order_and_re_encodes_sorted() -> None:
    (large,) = [vector for vector in OK if vector["id"] == "pub-signed-large-near-4k"]
    term = binary_to_term(bytes.fromhex(large["etf_hex"]))
    assert len(term) == 41
    assert list(term) != sorted(term)  # OTP wrote it in hash order ...
    encoded = term_to_binary(term)
    assert encoded.hex() != large["etf_hex"]  # ... which cannot be reproduced,
    assert binary_to_term(encoded) == term  # but any order is the same term
    assert list(binary_to_term(encoded)) == sorted(term)


def test_otp_26_atoms_decode_and_encode_with_minor_version_2() -> None:
    (vector,) = [vector for vector in OK if vector["id"] == "pub-signed-etf-minor-version-2"]
    payload = bytes.fromhex(vector["payload_hex"])
    term = binary_to_term(payload)
    assert to_typed_json(term) == vector["session_typed"]
    assert term_to_binary(term, minor_version=2) == payload
    assert term_to_binary(term).hex() == vector["etf_hex"]  # OTP 25's form of the same term


# -- each type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_body"),
    [
        (0, "6100"),
        (255, "61ff"),
        (256, "6200000100"),
        (-1, "62ffffffff"),
        (2**31 - 1, "627fffffff"),
        (-(2**31), "6280000000"),
        (2**31, "6e040000000080"),
        (-(2**31) - 1, "6e040101000080"),
        (1_645_504_691_156, "6e0600d4fbb81f7f01"),  # a Plug.Crypto signed_at, as seen in PLUG.md
        (1.5, "46" + struct.pack(">d", 1.5).hex()),
        (-0.0, "468000000000000000"),
        ("", "6d00000000"),
        ("hé", "6d0000000368c3a9"),
        (b"\xff\x00", "6d00000002ff00"),
        ([], "6a"),
        ([1, 2, 3], "6b0003010203"),
        ([256], "6c00000001" + "6200000100" + "6a"),
        (["a"], "6c000000016d00000001616a"),
        ((), "6800"),
        ((1, "a"), "6802" + "6101" + "6d0000000161"),
        ({}, "7400000000"),
        (True, "640004" + b"true".hex()),
        (False, "640005" + b"false".hex()),
        (None, "640003" + b"nil".hex()),
        (Atom("ok"), "6400026f6b"),
        (Atom("é"), "640001e9"),  # Latin-1 fits ATOM_EXT
        (Atom("日本"), "7706e697a5e69cac"),  # beyond Latin-1: SMALL_ATOM_UTF8_EXT
        (ImproperList([1], 2), "6c00000001" + "6101" + "6102"),
        (BitString(b"\xe0", 3), "4d0000000103e0"),
    ],
    ids=repr,
)
def test_each_type_encodes_as_term_to_binary_and_decodes_back(value: Any, hex_body: str) -> None:
    encoded = term_to_binary(value)
    assert encoded.hex() == "83" + hex_body
    decoded = binary_to_term(encoded)
    assert decoded == value
    assert type(decoded) is type(value)


def test_minor_version_2_writes_every_atom_as_utf8() -> None:
    assert term_to_binary(Atom("ok"), minor_version=2).hex() == "8377026f6b"
    assert term_to_binary(True, minor_version=2).hex() == "837704" + b"true".hex()
    assert term_to_binary(None, minor_version=2).hex() == "837703" + b"nil".hex()
    long_name = "é" * 200  # 400 UTF-8 bytes: ATOM_UTF8_EXT with a 16-bit length
    assert term_to_binary(Atom(long_name), minor_version=2)[:4].hex() == "83760190"
    with pytest.raises(ValueError, match="minor_version"):
        term_to_binary(1, minor_version=3)


def test_every_atom_encoding_decodes_to_the_same_atom() -> None:
    for body in ("6400026f6b", "7302" + "6f6b", "7600026f6b", "77026f6b"):
        assert binary_to_term(etf(body)) == Atom("ok")
    assert binary_to_term(etf("7704" + b"true".hex())) is True
    assert binary_to_term(etf("7303" + b"nil".hex())) is None


def test_atoms_are_not_strings_and_true_false_nil_are_python_values() -> None:
    assert Atom("ok") != "ok"
    assert len({Atom("ok"), "ok"}) == 2
    assert binary_to_term(term_to_binary({Atom("ok"): 1, "ok": 2})) == {Atom("ok"): 1, "ok": 2}
    with pytest.raises(ValueError, match="True"):
        Atom("true")
    with pytest.raises(ValueError, match="255"):
        Atom("x" * 256)
    with pytest.raises(AttributeError):
        Atom("ok").name = "other"


def test_large_integers_use_large_big_ext_and_are_capped() -> None:
    big = 2 ** (8 * 300)
    encoded = term_to_binary(-big)
    assert encoded[1] == 111  # LARGE_BIG_EXT: more than 255 bytes of magnitude
    assert binary_to_term(encoded) == -big
    too_big = 2 ** (8 * MAX_BIGNUM_BYTES)
    with pytest.raises(EtfError, match="over"):
        term_to_binary(too_big)
    header = b"\x83o" + struct.pack(">I", MAX_BIGNUM_BYTES + 1) + b"\x00"
    with pytest.raises(EtfError, match="over"):
        binary_to_term(header + b"\x01" * (MAX_BIGNUM_BYTES + 1))


def test_old_text_floats_decode_and_malformed_ones_are_refused() -> None:
    text = b"1.50000000000000000000e+00".ljust(31, b"\0")
    assert binary_to_term(b"\x83c" + text) == 1.5
    with pytest.raises(EtfError, match="malformed"):
        binary_to_term(b"\x83c" + b"1.5; rm -rf".ljust(31, b"\0"))


def test_non_finite_floats_are_refused_both_ways() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(EtfError, match="finite"):
            term_to_binary(value)
        with pytest.raises(EtfError, match="finite"):
            binary_to_term(b"\x83F" + struct.pack(">d", value))


def test_long_charlists_and_mixed_lists_use_list_ext() -> None:
    assert term_to_binary(list(range(256)) * 256)[1] == ord("l")  # 65536 items: too many for STRING_EXT
    assert term_to_binary([1, "a"])[1] == ord("l")
    assert term_to_binary([1, True])[1] == ord("l")  # a bool is an atom, not a small int


def test_large_tuples_use_large_tuple_ext() -> None:
    value = tuple(range(300))
    encoded = term_to_binary(value)
    assert encoded[1] == ord("i")
    assert binary_to_term(encoded) == value


def test_improper_lists_keep_their_tail_and_nested_tails_flatten() -> None:
    # [1 | [2 | :tail]] written cell by cell is the improper list [1, 2 | :tail].
    nested = etf("6c00000001" + "6101" + "6c00000001" + "6102" + "6400047461696c")
    assert binary_to_term(nested) == ImproperList([1, 2], Atom("tail"))
    # [1 | [2]] is the proper list [1, 2]; a LIST_EXT of no cells is its tail.
    assert binary_to_term(etf("6c00000001" + "6101" + "6b000102")) == [1, 2]
    assert binary_to_term(etf("6c00000000" + "6101")) == 1


def test_utf8_binaries_are_str_and_others_bytes_and_both_encode_the_same() -> None:
    assert term_to_binary("abc") == term_to_binary(b"abc")
    assert binary_to_term(term_to_binary(b"abc")) == "abc"
    token = bytes(range(128, 160))  # not UTF-8, like most random tokens
    assert binary_to_term(term_to_binary(token)) == token
    assert binary_to_term(term_to_binary(b"\xc3")) == b"\xc3"


def test_byte_aligned_bit_binaries_are_binaries() -> None:
    assert binary_to_term(etf("4d0000000208" + b"ok".hex())) == "ok"
    with pytest.raises(EtfError, match="bit count"):
        binary_to_term(etf("4d0000000009" + "00"))
    with pytest.raises(ValueError, match="1 to 7"):
        BitString(b"\x01", 8)


def test_subclasses_of_builtins_encode_as_their_base_type() -> None:
    class Colour(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    assert term_to_binary({"c": Colour.RED, "n": Name("x")}) == term_to_binary({"c": 1, "n": "x"})


# -- map keys -----------------------------------------------------------------------


def test_map_keys_are_written_in_erlang_term_order() -> None:
    # number < atom < tuple < map < [] < list < binary; integers before floats.
    value = {"b": 1, "a": 2, 2.5: 3, 7: 4, Atom("z"): 5, (1,): 6, None: 7}
    encoded = term_to_binary(value)
    assert list(binary_to_term(encoded)) == [7, 2.5, None, Atom("z"), (1,), "a", "b"]
    assert term_to_binary(dict(reversed(value.items()))) == encoded


def test_keys_python_merges_but_erlang_distinguishes_are_refused_on_decode() -> None:
    # %{1 => :a, 1.0 => :b} is a valid two-key Erlang map; Python cannot hold it.
    two = etf("7400000002" + "6101" + "640001" + "61" + "46" + struct.pack(">d", 1.0).hex() + "640001" + "62")
    with pytest.raises(EtfError, match="same key twice"):
        binary_to_term(two)


def test_keys_that_are_the_same_erlang_term_are_refused_on_encode() -> None:
    with pytest.raises(EtfError, match="same Erlang term"):
        term_to_binary({"a": 1, b"a": 2})


def test_a_map_key_python_cannot_hash_is_refused() -> None:
    with pytest.raises(EtfError, match="cannot hold as a key"):
        binary_to_term(etf("7400000001" + "6b000101" + "6101"))  # %{[1] => 1}


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        (88, "pid"),
        (103, "pid"),
        (89, "port"),
        (102, "port"),
        (120, "port"),
        (90, "reference"),
        (101, "reference"),
        (114, "reference"),
        (112, "fun"),
        (117, "fun"),
        (113, "export"),
        (82, "atom cache"),
        (121, "local"),
        (68, "distribution"),
        (1, "unknown tag 1"),
    ],
)
def test_funs_pids_ports_references_and_exports_are_refused(tag: int, kind: str) -> None:
    # Also inside a session map, where Plug would have created them.
    inner = bytes([tag]) + b"\x00" * 40
    for data in (b"\x83" + inner, etf("74000000016d0000000161") + inner):
        with pytest.raises(EtfError, match=kind):
            binary_to_term(data)


def test_etf_errors_are_session_errors_and_value_errors() -> None:
    assert issubclass(EtfError, SessionError)
    assert issubclass(EtfError, ValueError)


def test_a_term_without_its_version_byte_is_refused() -> None:
    for data in (b"", b"t\x00\x00\x00\x00", b"\x82t\x00\x00\x00\x00"):
        with pytest.raises(EtfError, match="version byte"):
            binary_to_term(data)


def test_bytes_after_the_term_are_ignored_as_binary_to_term_ignores_them() -> None:
    assert binary_to_term(term_to_binary({"a": 1}) + b"junk") == {"a": 1}


@pytest.mark.parametrize("vector", OK, ids=[vector["id"] for vector in OK])
def test_every_truncation_of_a_vector_term_is_refused(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["etf_hex"])
    for end in range(len(data)):
        with pytest.raises(EtfError):
            binary_to_term(data[:end])


def test_values_with_no_erlang_term_are_refused_naming_the_type() -> None:
    for value in ({1, 2}, object(), "\ud800", {"k": {1: {2: frozenset()}}}):
        with pytest.raises(EtfError):
            term_to_binary(value)
    with pytest.raises(TypeError, match="bytes"):
        binary_to_term("\x83a\x01")  # type: ignore[arg-type]


# -- limits -------------------------------------------------------------------------


def nested_lists(depth: int) -> bytes:
    """``[[[...[]...]]]`` of ``depth`` levels, the innermost ``[]`` included."""
    return b"\x83" + b"l\x00\x00\x00\x01" * (depth - 1) + b"j" + b"j" * (depth - 1)


def test_nesting_up_to_max_depth_is_accepted_and_beyond_it_refused() -> None:
    assert binary_to_term(nested_lists(MAX_DEPTH)) is not None
    with pytest.raises(EtfError, match="deeper"):
        binary_to_term(nested_lists(MAX_DEPTH + 1))
    with pytest.raises(EtfError, match="deeper"):
        binary_to_term(nested_lists(10), max_depth=9)
    with pytest.raises(EtfError, match="deeper than 3"):
        term_to_binary([[[[1]]]], max_depth=3)


def test_deep_values_far_beyond_the_limit_fail_cleanly_not_with_recursion_errors() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(EtfError):
        term_to_binary({"k": deep})
    with pytest.raises(EtfError, match="deeper"):
        binary_to_term(nested_lists(100_000))
    deep_key: Any = ()
    for _ in range(100_000):
        deep_key = (deep_key,)
    with pytest.raises(EtfError):
        term_to_binary({deep_key: 1})


@pytest.mark.parametrize(
    "header",
    [
        "6cffffffff",  # LIST_EXT of 4 billion elements
        "74ffffffff",  # MAP_EXT of 4 billion pairs
        "69ffffffff",  # LARGE_TUPLE_EXT of 4 billion elements
    ],
)
def test_element_counts_larger_than_the_bytes_left_are_refused_before_allocating(header: str) -> None:
    with pytest.raises(EtfError, match="count exceeds"):
        binary_to_term(etf(header + "6a" * 100))


def test_lengths_larger_than_the_bytes_left_are_refused() -> None:
    for header in ("6dffffffff", "6bffff", "64ffff", "6fffffffff00"):
        with pytest.raises(EtfError):
            binary_to_term(etf(header + "00" * 10))


# -- compressed terms (tag 80) --------------------------------------------------------


def test_compressed_terms_decode_like_the_term_itself() -> None:
    term = term_to_binary({"user": "alice", "ids": list(range(100))})
    assert binary_to_term(compressed(term)) == binary_to_term(term)
    assert binary_to_term(compressed(term) + b"junk") == binary_to_term(term)


@pytest.mark.parametrize(("declared", "reason"), [(-1, "declared size"), (+1, "declared size"), (None, "")])
def test_compressed_terms_must_inflate_to_their_declared_size(declared: int | None, reason: str) -> None:
    term = term_to_binary(list(range(1000)))
    if declared is None:  # corrupt stream
        data = compressed(term)
        data = data[:10] + bytes(b ^ 0xFF for b in data[10:20]) + data[20:]
        with pytest.raises(EtfError, match="compressed"):
            binary_to_term(data)
        return
    with pytest.raises(EtfError, match=reason):
        binary_to_term(compressed(term, len(term) - 1 + declared))


def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    bomb = b"\x83P" + struct.pack(">I", 1000) + zlib.compress(b"j" * 50_000_000)
    with pytest.raises(EtfError, match="more than its declared size"):
        binary_to_term(bomb)
    with pytest.raises(EtfError, match="over 1000 bytes"):
        binary_to_term(b"\x83P" + struct.pack(">I", 5000) + zlib.compress(b"j" * 5000), max_size=1000)


def test_empty_truncated_and_nested_compressed_terms_are_refused() -> None:
    with pytest.raises(EtfError, match="empty"):
        binary_to_term(b"\x83P\x00\x00\x00\x00" + zlib.compress(b""))
    with pytest.raises(EtfError, match="truncated"):
        binary_to_term(b"\x83P\x00\x00")
    inner = compressed(term_to_binary([1]))[1:]  # a compressed term where a term is expected
    with pytest.raises(EtfError, match="compressed term inside"):
        binary_to_term(compressed(b"\x83" + inner))


# -- typed JSON --------------------------------------------------------------------------


def test_typed_json_covers_every_type_and_inverts() -> None:
    value = {
        "s": "x",
        "b": b"\xff",
        "a": Atom("ok"),
        "t": (1, None),
        "m": {1: True},
        "i": ImproperList([1], 2),
        "bits": BitString(b"\x80", 1),
        "l": [1.5],
    }
    typed = to_typed_json(value)
    assert typed["b"] == {"bytes_b64": "/w=="}
    assert typed["m"] == {"map": [[1, True]]}
    assert typed["l"] == [{"float": 1.5}]
    assert from_typed_json(json.loads(json.dumps(typed))) == value


# -- property tests --------------------------------------------------------------------

atoms = st.text(max_size=20).filter(lambda name: name not in ("true", "false", "nil")).map(Atom)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | atoms
)
keys = st.recursive(
    st.text(max_size=8) | st.integers() | atoms, lambda inner: st.tuples(inner, inner), max_leaves=4
)
terms = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=25,
)


def normalized(value: Any) -> Any:
    """What decoding gives for ``value``: UTF-8 bytes come back as str."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [normalized(item) for item in value]
    if isinstance(value, tuple):
        return tuple(normalized(item) for item in value)
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    return value


@settings(max_examples=300, derandomize=True, deadline=None)
@given(terms)
def test_any_term_round_trips_and_re_encodes_to_the_same_bytes(value: Any) -> None:
    encoded = term_to_binary(value)
    decoded = binary_to_term(encoded)
    assert decoded == normalized(value)
    assert to_typed_json(decoded) == to_typed_json(normalized(value))
    assert term_to_binary(decoded) == encoded
    assert term_to_binary(decoded, minor_version=2) == term_to_binary(value, minor_version=2)


def assert_decodes_or_refuses(data: bytes) -> None:
    """The fuzz property: a term (which encodes back) or EtfError -- nothing else."""
    try:
        term = binary_to_term(data)
    except EtfError:
        return
    assert binary_to_term(term_to_binary(term)) == term


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_decode_or_raise_etf_error(data: bytes) -> None:
    assert_decodes_or_refuses(data)
    assert_decodes_or_refuses(b"\x83" + data)


TAGS = [70, 77, 80, 97, 98, 99, 100, 104, 105, 106, 107, 108, 109, 110, 111, 115, 116, 118, 119, 88, 112]


@settings(max_examples=500, derandomize=True, deadline=None)
@given(
    st.lists(
        st.sampled_from(TAGS).map(lambda tag: bytes([tag]))
        | st.sampled_from([b"\x00", b"\x01", b"\x02", b"\xff", b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"])
        | st.binary(max_size=4),
        max_size=40,
    )
)
def test_fuzz_tag_shaped_bytes_decode_or_raise_etf_error(chunks: list[bytes]) -> None:
    assert_decodes_or_refuses(b"\x83" + b"".join(chunks))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(terms, st.data())
def test_fuzz_mutated_terms_decode_or_raise_etf_error(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(term_to_binary(value))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        encoded[position] = data.draw(st.integers(0, 255))
    assert_decodes_or_refuses(bytes(encoded))


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"1.5", 1.5), (b"-2.25e3", -2250.0), (b"+0.5", 0.5), (b"1,5", 1.5), (b"3.0E-2", 0.03)],
)
def test_a_text_float_reads_as_erlang_reads_it(text: bytes, value: float) -> None:
    assert binary_to_term(b"\x83c" + text.ljust(31, b"\0")) == value


@pytest.mark.parametrize("text", [b"1", b"1.", b".5", b"-.5", b"1.e5", b"1e-5", b"", b"nan", b"1.5x"])
def test_a_text_float_erlang_refuses_is_refused(text: bytes) -> None:
    with pytest.raises(EtfError, match="text float"):
        binary_to_term(b"\x83c" + text.ljust(31, b"\0"))
