"""The bytes a session is kept as: in the cookie payload or in a store record.

Layout (all integers big-endian)::

    format   u8    1
    created  u64   unix seconds the session began (reset by log-in)
    touched  u64   unix seconds of the last recorded activity
    auth     u64   unix seconds of the last authentication, 0 if none
    meta_len u16   length of the meta JSON that follows (0: no meta)
    meta     JSON  object of lifecycle metadata (user binding, ...), may be empty
    data     JSON  object: the session's own data

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
from typing import Any

from .errors import InvalidCookie, SerializationError

__all__ = ["Record", "dump_data", "load_object", "pack", "unpack"]

_HEADER = struct.Struct("!BQQQH")
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
_DUMP_ERRORS = (TypeError, ValueError, RecursionError)


class Record:
    """A decoded record: lifecycle times, metadata and the data's JSON."""

    __slots__ = ("auth_at", "created_at", "data_json", "meta", "touched_at")

    def __init__(
        self,
        created_at: int,
        touched_at: int,
        auth_at: int | None,
        meta: dict[str, Any],
        data_json: bytes,
    ) -> None:
        self.created_at = created_at
        self.touched_at = touched_at
        self.auth_at = auth_at
        self.meta = meta
        self.data_json = data_json

    def data(self) -> dict[str, Any]:
        """Decode the data JSON; a payload that is not a JSON object is invalid."""
        try:
            value = load_object(self.data_json.decode())
        except _LOAD_ERRORS:
            raise InvalidCookie("payload") from None
        if type(value) is not dict:
            raise InvalidCookie("payload")
        return value


def dump_data(data: dict[str, Any]) -> bytes:
    """Serialize session data to canonical JSON bytes, naming the key that fails."""
    try:
        return _encode(data).encode()
    except _DUMP_ERRORS as exc:
        for key, value in dict.items(data):
            if not isinstance(key, str):
                raise SerializationError(None, f"key {key!r} is not a str") from exc
            try:
                _encode(value)
            except _DUMP_ERRORS as inner:
                raise SerializationError(key, str(inner) or type(inner).__name__) from exc
        raise SerializationError(None, str(exc)) from exc


def pack(
    created_at: int,
    touched_at: int,
    auth_at: int | None,
    meta: dict[str, Any],
    data_json: bytes,
) -> bytes:
    meta_json = _encode(meta).encode() if meta else b""
    header = _HEADER.pack(_FORMAT, created_at, touched_at, auth_at or 0, len(meta_json))
    return header + meta_json + data_json


def unpack(raw: bytes) -> Record:
    """Parse a record; anything malformed raises ``InvalidCookie("payload")``."""
    try:
        fmt, created, touched, auth, meta_len = _HEADER.unpack_from(raw)
    except struct.error:
        raise InvalidCookie("payload") from None
    if fmt != _FORMAT:
        raise InvalidCookie("payload")
    start = _HEADER.size
    meta: dict[str, Any] = {}
    if meta_len:
        try:
            meta = load_object(raw[start : start + meta_len].decode())
        except _LOAD_ERRORS:
            raise InvalidCookie("payload") from None
        if type(meta) is not dict:
            raise InvalidCookie("payload")
    data_json = raw[start + meta_len :]
    if not data_json.startswith(b"{"):
        raise InvalidCookie("payload")
    return Record(created, touched, auth or None, meta, data_json)
