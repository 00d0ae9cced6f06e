"""The bytes a session is kept as: in the cookie payload or in a store record.

A cookie session is one byte string, the *record* (all integers big-endian)::

    format   u8    1
    created  u64   unix seconds the session began (reset by log-in)
    touched  u64   unix seconds of the last recorded activity
    auth     u64   unix seconds of the last authentication, 0 if none
    meta_len u16   length of the meta JSON that follows (0: no meta)
    meta     JSON  object of lifecycle metadata (user binding, ...), may be empty
    data     JSON  object: the session's own data (or, for a cookie store that
                   owns its format, that format's: an ETF map for Phoenix's)

A server-side record is the same bytes up to the meta (the *head*) and the
data as *fields*: one per top-level key, named by the key as a JSON string
escapes it (ASCII, no quotes) and holding that key's value as JSON text. A
store applies a request's changes to the fields it names, so concurrent
requests that change different keys never overwrite each other; joined, the
fields are the data JSON (:func:`join_fields`).

The data JSON is kept exactly as loaded so the end of a request can tell
whether the session changed by comparing serialized forms; that is what catches
in-place edits of nested values without a ``modified`` flag.

Everything is checked when it is read (:func:`unpack`): a record that does not
decode -- a truncated or altered one, a pickle, metadata of the wrong shape --
raises ``InvalidCookie`` there, never later in the app. Only JSON is ever
decoded here: no pickle, no code-constructing formats.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from json.scanner import c_make_scanner  # type: ignore[attr-defined]
from typing import Any, NamedTuple

from .errors import InvalidCookie, SerializationError

__all__ = [
    "Record",
    "check_meta",
    "dump_data",
    "dump_meta",
    "dump_text",
    "field_changes",
    "field_name",
    "fields_of",
    "join_fields",
    "load_data",
    "load_fields",
    "load_meta",
    "load_object",
    "pack",
    "pack_head",
    "unpack",
]

_HEADER = struct.Struct("!BQQQH")
_HEADER_SIZE = _HEADER.size
_unpack_header = _HEADER.unpack_from
_FORMAT = 1


def _not_json(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON type")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value - value != 0:  # inf (1e999 overflows to it): what could not be written back
        raise ValueError(f"{text} is out of range")
    return value


# Compact ASCII JSON; NaN and infinities refused both ways, so whatever loads can be
# written back. The C encoder and scanner are built once: json.dumps/json.loads
# rebuild them per call, which costs more than the encoding itself for a small session.
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)
if c_make_encoder is not None and c_make_scanner is not None:
    _c_encode = c_make_encoder(None, _not_json, encode_basestring_ascii, None, ":", ",", False, False, False)
    _scan = c_make_scanner(_DECODER)

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
    _py_decoder = _DECODER

    def _encode(value: Any) -> str:
        return _py_encoder.encode(value)

    def _c_encode(value: Any, level: int) -> tuple[str]:
        return (_py_encoder.encode(value),)

    def load_object(text: str) -> Any:
        """Decode one JSON value that must span all of ``text`` (no whitespace)."""
        value, end = _py_decoder.raw_decode(text)
        if end != len(text):
            raise ValueError("trailing data")
        return value


_LOAD_ERRORS = (ValueError, StopIteration, RecursionError, UnicodeDecodeError)
_CONTAINERS = (dict, list, tuple)
_DUMP_ERRORS = (TypeError, ValueError, RecursionError)


class Record(NamedTuple):
    """A decoded record: lifecycle times, the metadata (checked, and as JSON), the data JSON."""

    created_at: int
    touched_at: int
    auth_at: int | None
    meta_json: bytes  # b"" for no metadata
    data_json: bytes
    meta: dict[str, Any]  # meta_json decoded and checked; shared, never changed in place


_new_record = tuple.__new__  # builds a Record without NamedTuple's Python-level __new__
_NO_META: dict[str, Any] = {}


def load_data(data_json: bytes) -> dict[str, Any]:
    """Decode a record's data; a payload that is not a JSON object is invalid."""
    try:
        value = load_object(data_json.decode())
    except _LOAD_ERRORS:
        raise InvalidCookie("payload") from None
    if type(value) is not dict:
        raise InvalidCookie("payload")
    return value


#: Metadata keys whose values are text, when present.
_META_TEXT = ("sid", "grp", "lvl", "ua", "ip", "how")


def check_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` if it has the shapes sessionware writes, else ``InvalidCookie("meta")``.

    A user ID is an int or a string of 1 to 256 characters (what ``log_in``
    accepts); the other known keys hold text. Unknown keys are left alone.
    """
    uid = meta.get("uid")
    if uid is not None and not (type(uid) is int or (type(uid) is str and 0 < len(uid) <= 256)):
        raise InvalidCookie("meta")
    for key in _META_TEXT:
        value = meta.get(key)
        if value is not None and type(value) is not str:
            raise InvalidCookie("meta")
    return meta


def load_meta(meta_json: bytes) -> dict[str, Any]:
    """Decode and check a record's metadata (empty bytes: no metadata)."""
    if not meta_json:
        return {}
    try:
        value = load_object(meta_json.decode())
    except _LOAD_ERRORS:
        raise InvalidCookie("meta") from None
    if type(value) is not dict:
        raise InvalidCookie("meta")
    return check_meta(value)


def dump_meta(meta: dict[str, Any]) -> bytes:
    return _encode(meta).encode() if meta else b""


def dump_text(value: Any) -> str:
    """Compact JSON text of ``value`` (ASCII; NaN and infinities refused)."""
    return _encode(value)


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
        # A plain dict takes the C encoder's fast path; a dict subclass (a Session)
        # would be asked for its items() through Python.
        encoded = "".join(_c_encode(data if type(data) is dict else dict(dict.items(data)), 0)).encode()
    except _DUMP_ERRORS as exc:
        for key, value in dict.items(data):
            if not isinstance(key, str):
                raise SerializationError(None, f"key {key!r} is not a str") from exc
            _dump_value(key, value)
        raise SerializationError(None, str(exc)) from exc
    for key, value in dict.items(data):
        if type(key) is not str:
            raise SerializationError(None, f"key {key!r} is not a str")
        if isinstance(value, _CONTAINERS):
            bad = _non_str_key(value)
            if bad is not None:
                raise SerializationError(key, f"it holds the dict key {bad!r}, which is not a str")
    return encoded


def _dump_value(key: str, value: Any) -> str:
    """One value's JSON text, or a SerializationError naming ``key``."""
    try:
        text = _encode(value)
    except _DUMP_ERRORS as exc:
        raise SerializationError(key, str(exc) or type(exc).__name__) from exc
    if isinstance(value, _CONTAINERS):
        bad = _non_str_key(value)
        if bad is not None:
            raise SerializationError(key, f"it holds the dict key {bad!r}, which is not a str")
    return text


def field_name(key: Any) -> str:
    """A session key's field name: the key as a JSON string escapes it, without the quotes."""
    if type(key) is not str:
        raise SerializationError(None, f"key {key!r} is not a str")
    return encode_basestring_ascii(key)[1:-1]


def fields_of(data: dict[str, Any]) -> dict[str, str]:
    """Every key of ``data`` as a field: ``{name: JSON text of the value}``."""
    return {field_name(key): _dump_value(key, value) for key, value in dict.items(data)}


def field_changes(data: dict[str, Any], loaded: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """What turns the ``loaded`` fields into ``data``: the fields to set, the names to remove."""
    changed: dict[str, str] = {}
    names = set()
    for key, value in dict.items(data):
        name = field_name(key)
        names.add(name)
        text = _dump_value(key, value)
        if loaded.get(name) != text:
            changed[name] = text
    return changed, tuple(name for name in loaded if name not in names)


def join_fields(fields: Mapping[str, str]) -> str:
    """The data JSON the fields make (their names are JSON-escaped already)."""
    if not fields:
        return "{}"
    parts = ["{"]
    for name, value in fields.items():
        parts += ('"', name, '":', value, ",")
    parts[-1] = "}"
    return "".join(parts)


def load_fields(fields: Mapping[str, str]) -> dict[str, Any]:
    """The session data a server-side record's fields hold; anything malformed is invalid."""
    parts = ["{"]
    for name, value in fields.items():
        parts += ('"', name, '":', value, ",")
    parts[-1] = "}"
    try:
        value = load_object("".join(parts)) if fields else {}
    except (*_LOAD_ERRORS, TypeError):  # TypeError: a store gave a value that is not text
        raise InvalidCookie("payload") from None
    if type(value) is not dict or len(value) != len(fields):  # a field holding more than one value
        raise InvalidCookie("payload")
    return value


def pack_head(created_at: int, touched_at: int, auth_at: int | None, meta_json: bytes) -> bytes:
    return _HEADER.pack(_FORMAT, created_at, touched_at, auth_at or 0, len(meta_json)) + meta_json


def pack(created_at: int, touched_at: int, auth_at: int | None, meta_json: bytes, data_json: bytes) -> bytes:
    return _HEADER.pack(_FORMAT, created_at, touched_at, auth_at or 0, len(meta_json)) + meta_json + data_json


def unpack(raw: bytes, data_json: bytes | None = None) -> Record:
    """Parse and check a record; anything malformed raises ``InvalidCookie``.

    ``raw`` is a whole record (a cookie's payload), or -- with ``data_json``
    given -- a server-side record's head, which then must end with its
    metadata. The metadata is decoded and checked here; the data only has to
    look like its format (a JSON object, or an Erlang term for the Phoenix
    store's), as the loader of that format decodes it next.
    """
    try:
        fmt, created, touched, auth, meta_len = _unpack_header(raw)
    except struct.error:
        raise InvalidCookie("payload") from None
    if fmt != _FORMAT:
        raise InvalidCookie("payload")
    split = _HEADER_SIZE + meta_len
    if data_json is None:
        data_json = raw[split:]
    elif len(raw) != split:
        raise InvalidCookie("payload")
    if data_json[:1] != b"{" and data_json[:1] != b"\x83":
        raise InvalidCookie("payload")
    meta_json = raw[_HEADER_SIZE:split]
    if len(meta_json) != meta_len:
        raise InvalidCookie("payload")
    meta = load_meta(meta_json) if meta_len else _NO_META
    return _new_record(Record, (created, touched, auth or None, meta_json, data_json, meta))
