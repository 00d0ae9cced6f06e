"""The pickle Django's cache layer wraps a session in, read as plain data and never unpickled (SW-38)."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionware._pickle_data import MAX_BYTES, MAX_DEPTH, NotPlainData, plain_data

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)

# JSON's data model, as a session under Django's JSONSerializer holds it.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=40,
)


def as_json(value: Any) -> Any:
    """What JSON would make of ``value``: tuples become lists."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=8), st.sampled_from(list(PROTOCOLS)))
def test_plain_data_reads_back_exactly_what_pickle_wrote(data: dict[str, Any], protocol: int) -> None:
    assert plain_data(pickle.dumps(data, protocol)) == data


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tuples_become_lists_and_shared_values_stay_equal(protocol: int) -> None:
    shared = ["x"]
    data: dict[str, Any] = {"t0": (), "t1": (1,), "t2": (1, "a"), "t3": (1, 2, 3), "t9": tuple(range(9))}
    data |= {"a": shared, "b": shared}
    assert plain_data(pickle.dumps(data, protocol)) == as_json(data)


class Gadget:
    """What an attacker who can write the cache stores: a pickle that runs a command when loaded."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.sentinel}",))


class Plain:
    def __init__(self) -> None:
        self.a = 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sw38_a_pickle_gadget_is_refused_and_never_runs(protocol: int, tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    raw = pickle.dumps({"_auth_user_id": "1", "x": Gadget(sentinel)}, protocol)
    with pytest.raises(NotPlainData, match="not plain data"):
        plain_data(raw)
    assert not sentinel.exists()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        decimal.Decimal("1.5"),
        uuid.UUID(int=1),
        b"bytes",
        bytearray(b"bytes"),
        {1, 2},
        frozenset({1}),
        Plain(),
        complex(1, 2),
        pickle.dumps,  # a global by name
    ],
    ids=repr,
)
def test_anything_but_plain_data_is_refused(value: Any, protocol: int) -> None:
    try:
        raw = pickle.dumps({"k": value}, protocol)
    except pickle.PicklingError:  # pragma: no cover - every value above pickles
        pytest.fail("the value did not pickle")
    with pytest.raises(NotPlainData):
        plain_data(raw)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_what_json_cannot_hold_is_refused(protocol: int) -> None:
    for value in ({1: "an int key"}, {"f": float("nan")}, {"f": float("inf")}, {"i": 2**300}):
        with pytest.raises(NotPlainData):
            plain_data(pickle.dumps(value, protocol))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(NotPlainData, match="deep"):
        plain_data(pickle.dumps({"c": cycle}, protocol))


def test_a_memo_bomb_is_refused_within_its_budget() -> None:
    # 70 levels of a list holding the one below twice: 434 bytes, 2**70 values to a naive walk.
    bomb: list[Any] = []
    for _ in range(70):
        bomb = [bomb, bomb]
    raw = pickle.dumps(bomb, 4)
    assert len(raw) < 1000
    with pytest.raises(NotPlainData):
        plain_data(raw)
    wide: list[Any] = ["x"]
    for _ in range(MAX_DEPTH - 2):  # shallow enough, but 2**62 values
        wide = [wide, wide]
    with pytest.raises(NotPlainData, match=r"values|bytes of data"):  # whichever budget runs out first
        plain_data(pickle.dumps(wide, 4))


def test_deep_nesting_and_oversize_pickles_are_refused() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(NotPlainData, match="deep"):
        plain_data(pickle.dumps(deep, 5))
    with pytest.raises(NotPlainData, match="bytes"):
        plain_data(pickle.dumps("x" * MAX_BYTES, 5))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_truncation_and_byte_flip_is_data_or_refused_never_an_error(protocol: int) -> None:
    raw = pickle.dumps({"_auth_user_id": "42", "cart": ["a", ("b", 2)], "n": None, "f": 1.5}, protocol)
    for end in range(len(raw)):
        with pytest.raises(NotPlainData):
            plain_data(raw[:end])
    for index in range(len(raw)):
        for flip in (0x01, 0x80, 0xFF):
            changed = raw[:index] + bytes([raw[index] ^ flip]) + raw[index + 1 :]
            with contextlib.suppress(NotPlainData):  # anything else fails the test
                plain_data(changed)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_are_data_or_refused_never_an_error(raw: bytes) -> None:
    with contextlib.suppress(NotPlainData):  # anything else fails the test
        plain_data(b"\x80\x04" + raw)


def plain(value: Any) -> bool:
    """Whether ``value`` is made of JSON's types only."""
    if isinstance(value, dict):
        return all(type(key) is str and plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(plain(item) for item in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize("raw", [b"}\x8c\x01a(s.", b"(\x94.", b"](\x94a.", b"}(\x94\x8c\x01a\x94s."])
def test_a_mark_never_ends_up_in_the_data(raw: bytes) -> None:
    with pytest.raises(NotPlainData, match="MARK"):
        plain_data(raw)


def test_a_string_repeated_through_the_memo_counts_every_time() -> None:
    # 600 kB once in the pickle, 60 MB as the session would write it.
    raw = pickle.dumps({"a": ["x" * 600_000] * 100}, 4)
    assert len(raw) < MAX_BYTES
    with pytest.raises(NotPlainData, match="bytes of data"):
        plain_data(raw)


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_whatever_a_mutated_pickle_gives_is_plain_data(data: st.DataObject) -> None:
    raw = bytearray(
        pickle.dumps({"a": [1, "x", {"b": None}], "c": (True, 2.5)}, data.draw(st.sampled_from([2, 4, 5])))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        value = plain_data(bytes(raw))
    except NotPlainData:
        return
    assert plain(value), value


def test_a_warning_of_the_parser_is_a_refusal_under_filterwarnings_error() -> None:
    # pytest runs with filterwarnings=error: the parser's DeprecationWarning (an invalid
    # escape in a protocol 0 string) is raised, and refused like any other bad pickle.
    with pytest.raises(NotPlainData):
        plain_data(b'S"\\q"\n.')
