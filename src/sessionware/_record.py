"""The bytes a session is kept as: in the cookie payload or in a store record.

Layout (all integers big-endian)::

    format   u8    1
    created  u64   unix seconds the session began (reset by log-in)
    touched  u64   unix seconds of the last recorded activity
    auth     u64   unix seconds of the last authentication, 0 if none
    meta_len u16   length of the meta JSON that follows (0: no meta)
    meta     JSON  object of lifecycle metadata (user binding, ...), may be empty
    data     JSON  object: the session's own data (or, for a cookie store that
                   owns its format, that format's: an ETF map for Phoenix's)

The data JSON is kept exactly as loaded so the end of a request can tell
whether the session changed by comparing serialized forms; that is what catches
in-place edits of nested values without a ``modified`` flag.

Only JSON is ever decoded here: no pickle, no code-constructing formats.
"""

from __future__ import annotations

import json
import struct
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from json.scanner import c_make_scanner  # type: ignore[attr-defined]
from typing import Any, NamedTuple

from .errors import InvalidCookie, SerializationError

__all__ = ["Record", "dump_data", "dump_meta", "load_data", "load_meta", "load_object", "pack", "unpack"]

_HEADER = struct.Struct("!BQQQH")
_HEADER_SIZE = _HEADER.size
_unpack_header = _HEADER.unpack_from
_FORMAT = 1


def _not_json(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON type")


# Compact ASCII JSON, NaN and infinities refused. The C encoder and scanner are
# built once: json.dumps/json.loads rebuild them per call, which costs more than
# the encoding itself for a small session.
if c_make_encoder is not None and c_make_scanner is not None:
    _c_encode = c_make_encoder(None, _not_json, encode_basestring_ascii, None, ":", ",", False, False, False)
    _scan = c_make_scanner(json.JSONDecoder())

    def _encode(value: Any) -> str:
        return "".join(_c_encode(value, 0))

    def load_object(text: str) -> Any:
        """Decode one JSON value that must span all of ``text`` (no whitespace)."""
        value, end = _scan(text, 0)
        if end != len(text):
            raise ValueError("trailing data")
        return value

else:  # pragma: no cover - Python builds without the C accelerator
    _py_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_not_json)
    _py_decoder = json.JSONDecoder()

    def _encode(value: Any) -> str:
        return _py_encoder.encode(value)

    def load_object(text: str) -> Any:
        """Decode one JSON value that must span all of ``text`` (no whitespace)."""
        value, end = _py_decoder.raw_decode(text)
        if end != len(text):
            raise ValueError("trailing data")
        return value


_LOAD_ERRORS = (ValueError, StopIteration, RecursionError)
_CONTAINERS = (dict, list, tuple)
_DUMP_ERRORS = (TypeError, ValueError, RecursionError)


class Record(NamedTuple):
    """A decoded record: lifecycle times and the metadata and data, still as JSON bytes."""

    created_at: int
    touched_at: int
    auth_at: int | None
    meta_json: bytes  # b"" for no metadata
    data_json: bytes


_new_record = tuple.__new__  # builds a Record without NamedTuple's Python-level __new__


def load_data(data_json: bytes) -> dict[str, Any]:
    """Decode a record's data; a payload that is not a JSON object is invalid."""
    try:
        value = load_object(data_json.decode())
    except _LOAD_ERRORS:
        raise InvalidCookie("payload") from None
    if type(value) is not dict:
        raise InvalidCookie("payload")
    return value


def load_meta(meta_json: bytes) -> dict[str, Any]:
    """Decode a record's metadata (empty bytes: no metadata)."""
    return load_data(meta_json) if meta_json else {}


def dump_meta(meta: dict[str, Any]) -> bytes:
    return _encode(meta).encode() if meta else b""


def _non_str_key(value: Any) -> object | None:
    """The first dict key below ``value`` that is not a str (JSON would silently
    turn it into one, so it would come back changed), or None."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, nested in item.items():
                if type(key) is not str:
                    return key  # type: ignore[no-any-return]
                if isinstance(nested, _CONTAINERS):
                    pending.append(nested)
        else:
            pending.extend(nested for nested in item if isinstance(nested, _CONTAINERS))
    return None


def dump_data(data: dict[str, Any]) -> bytes:
    """Serialize session data to canonical JSON bytes, naming the key that fails."""
    try:
        encoded = _encode(data).encode()
    except _DUMP_ERRORS as exc:
        for key, value in dict.items(data):
            if not isinstance(key, str):
                raise SerializationError(None, f"key {key!r} is not a str") from exc
            try:
                _encode(value)
            except _DUMP_ERRORS as inner:
                raise SerializationError(key, str(inner) or type(inner).__name__) from exc
        raise SerializationError(None, str(exc)) from exc
    for key, value in dict.items(data):
        if type(key) is not str:
            raise SerializationError(None, f"key {key!r} is not a str")
        if isinstance(value, _CONTAINERS):
            bad = _non_str_key(value)
            if bad is not None:
                raise SerializationError(key, f"it holds the dict key {bad!r}, which is not a str")
    return encoded


def pack(created_at: int, touched_at: int, auth_at: int | None, meta_json: bytes, data_json: bytes) -> bytes:
    header = _HEADER.pack(_FORMAT, created_at, touched_at, auth_at or 0, len(meta_json))
    return header + meta_json + data_json


def unpack(raw: bytes) -> Record:
    """Parse a record's header; anything malformed raises ``InvalidCookie("payload")``.

    The metadata and data stay JSON bytes: :func:`load_meta` and :func:`load_data`
    decode them when they are needed.
    """
    try:
        fmt, created, touched, auth, meta_len = _unpack_header(raw)
    except struct.error:
        raise InvalidCookie("payload") from None
    if fmt != _FORMAT:
        raise InvalidCookie("payload")
    split = _HEADER_SIZE + meta_len
    data_json = raw[split:]
    # The metadata is checked when it is decoded, if ever; so is the data, by the
    # loader of its format: a JSON object, or an Erlang term (the Phoenix store's).
    if data_json[:1] != b"{" and data_json[:1] != b"\x83":
        raise InvalidCookie("payload")
    return _new_record(Record, (created, touched, auth or None, raw[_HEADER_SIZE:split], data_json))
