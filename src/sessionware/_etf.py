"""Erlang's External Term Format (ETF): a safe codec for the terms a Plug session holds.

``binary_to_term`` and ``term_to_binary`` here speak the format Plug's cookie
store uses (``:erlang.term_to_binary/1`` and ``binary_to_term/2``), in pure
Python, with no dependency. Decoding never executes or looks anything up:
atoms become :class:`Atom` values, nothing more.

Python types, both ways:

=================================  =======================================================
Erlang term                        Python value
=================================  =======================================================
``true`` / ``false``               ``True`` / ``False``
``nil`` (Elixir's nil)             ``None``
any other atom                     :class:`Atom` (``Atom("ok")``; never equal to a str)
binary that is valid UTF-8         ``str``
any other binary                   ``bytes`` (``user_token`` in phx.gen.auth sessions)
bitstring not a whole number       :class:`BitString`
of bytes
integer (any size)                 ``int``
float                              ``float`` (finite: Erlang has no NaN or infinity)
proper list (charlists too)        ``list`` (a charlist is a list of ints)
improper list ``[a | b]``          :class:`ImproperList`
tuple                              ``tuple``
map                                ``dict`` (keys in the order they were read)
=================================  =======================================================

``str`` and ``bytes`` encode to the same ``BINARY_EXT``, and every decoded
value encodes back to the bytes it came from when ``term_to_binary`` would have
written them that way, so a session read and written again keeps every key the
app did not change.

**Refused** (:class:`EtfError`): funs and exports (code), pids, ports and
references (meaningless off their node; Plug lets them through, sessionware
does not), distribution-only tags, a missing version byte, atoms longer than
255 characters or not valid UTF-8, non-finite floats, maps with duplicate keys
-- including keys Python cannot tell apart although Erlang can (``1``, ``1.0``
and ``true``; a map holding two of them is refused) -- and map keys Python
cannot hash (lists, maps).

**Bounded**, so that even a validly signed hostile term cannot exhaust memory or
recursion: nesting deeper than ``max_depth``; a compressed term (tag 80)
inflating to more than ``max_size`` bytes, or to a size other than the one it
declares; an element count larger than the bytes left could hold; an integer of
more than :data:`MAX_BIGNUM_BYTES` bytes. Bytes after the term are ignored, as
``binary_to_term`` ignores them.

**Encoding** is ``term_to_binary/1``'s: integers as ``SMALL_INTEGER_EXT``,
``INTEGER_EXT`` or bignums; floats as ``NEW_FLOAT_EXT``; lists of 0..255 ints
as ``STRING_EXT``; maps with their keys in Erlang's term order, which is the
order OTP writes for maps of up to 32 keys (larger maps are hash-ordered in OTP
and cannot be reproduced; any order decodes the same). Atoms follow
``minor_version``: ``1`` (OTP 25 and older, the default) writes Latin-1 atoms as
``ATOM_EXT``; ``2`` (OTP 26+) writes every atom as UTF-8. OTP 26+ no longer
sorts maps whose keys are atoms, so their key order is reproducible only as
OTP 25 wrote it.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
import struct
import zlib
from collections.abc import Iterable
from typing import Any

from .errors import SessionError

__all__ = [
    "MAX_BIGNUM_BYTES",
    "MAX_DEPTH",
    "MAX_SIZE",
    "Atom",
    "BitString",
    "EtfError",
    "ImproperList",
    "binary_to_term",
    "from_typed_json",
    "term_to_binary",
    "to_typed_json",
]

#: How deeply terms may nest (a session map holding a map is depth 2).
MAX_DEPTH = 100
#: The largest term, in bytes, a compressed term may inflate to.
MAX_SIZE = 1024 * 1024
#: The largest integer, in bytes of magnitude (2**8192), read or written.
MAX_BIGNUM_BYTES = 1024
#: Atoms hold at most this many characters (Erlang's own limit).
MAX_ATOM_CHARACTERS = 255

VERSION = 131
_COMPRESSED = 80
_SMALL_INTEGER = 97
_INTEGER = 98
_FLOAT = 99
_ATOM = 100
_SMALL_TUPLE = 104
_LARGE_TUPLE = 105
_NIL = 106
_STRING = 107
_LIST = 108
_BINARY = 109
_SMALL_BIG = 110
_LARGE_BIG = 111
_MAP = 116
_ATOM_UTF8 = 118
_SMALL_ATOM_UTF8 = 119
_SMALL_ATOM = 115
_NEW_FLOAT = 70
_BIT_BINARY = 77

_REFUSED = {
    88: "pid",
    103: "pid",
    89: "port",
    102: "port",
    120: "port",
    90: "reference",
    101: "reference",
    114: "reference",
    112: "fun",
    117: "fun",
    113: "export (a function reference)",
    82: "atom cache reference (distribution only)",
    68: "distribution header",
    121: "local term (node-specific)",
}

_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_i32 = struct.Struct(">i").unpack_from
_f64 = struct.Struct(">d").unpack_from
_pack_u16 = struct.Struct(">H").pack
_pack_u32 = struct.Struct(">I").pack
_pack_i32 = struct.Struct(">i").pack
_pack_f64 = struct.Struct(">d").pack
# What FLOAT_EXT (the pre-R11 text float) may hold before its NUL padding.
_FLOAT_TEXT = re.compile(rb"[+-]?[0-9]+[.,][0-9]+(?:[eE][+-]?[0-9]+)?")  # as Erlang reads it


class EtfError(SessionError, ValueError):
    """A term could not be decoded or encoded; the message says why (never the data)."""


class Atom:
    """An Erlang atom other than ``true``, ``false`` and ``nil``.

    Atoms are names, not strings: ``Atom("ok") != "ok"``, and a map may hold
    both as distinct keys. ``true``/``false`` are Python's booleans and ``nil``
    is None, so ``Atom("true")`` is refused. Names hold at most 255 characters.
    """

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Atom expects a str name, got {type(name).__name__}")
        if name in ("true", "false", "nil"):
            raise ValueError(f"the atom {name} is {'None' if name == 'nil' else name.title()} in Python")
        if len(name) > MAX_ATOM_CHARACTERS:
            raise ValueError(f"atoms hold at most {MAX_ATOM_CHARACTERS} characters, got {len(name)}")
        object.__setattr__(self, "name", name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Atom is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is Atom and other.name == self.name

    def __hash__(self) -> int:
        return hash((Atom, self.name))

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"

    def __reduce__(self) -> tuple[type[Atom], tuple[str]]:
        return Atom, (self.name,)


class BitString:
    """A bitstring whose length is not a whole number of bytes: ``<<1, 2:3>>``.

    ``data`` holds the bits, the last byte's unused low bits zero; ``bits`` is
    how many high bits of the last byte belong to it (1 to 7).
    """

    __slots__ = ("bits", "data")
    data: bytes
    bits: int

    def __init__(self, data: bytes, bits: int) -> None:
        if not isinstance(data, bytes) or not data:
            raise ValueError("BitString expects data to be non-empty bytes")
        if type(bits) is not int or not 1 <= bits <= 7:
            raise ValueError("BitString expects bits (used in the last byte) to be 1 to 7")
        mask = (0xFF << (8 - bits)) & 0xFF
        object.__setattr__(self, "data", data[:-1] + bytes([data[-1] & mask]))
        object.__setattr__(self, "bits", bits)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("BitString is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is BitString and (other.data, other.bits) == (self.data, self.bits)

    def __hash__(self) -> int:
        return hash((BitString, self.data, self.bits))

    def __repr__(self) -> str:
        return f"BitString({self.data!r}, {self.bits})"


class ImproperList:
    """A list whose tail is not a list: ``[1, 2 | :tail]``.

    ``items`` is a non-empty tuple of the elements, ``tail`` the final term
    (never a list; ``[a | [b]]`` is the proper list ``[a, b]``).
    """

    __slots__ = ("items", "tail")
    items: tuple[Any, ...]
    tail: Any

    def __init__(self, items: Iterable[Any], tail: Any) -> None:
        elements = tuple(items)
        if not elements:
            raise ValueError("ImproperList expects at least one item")
        if isinstance(tail, list | ImproperList):
            raise ValueError("ImproperList expects a tail that is not a list")
        object.__setattr__(self, "items", elements)
        object.__setattr__(self, "tail", tail)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ImproperList is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is ImproperList and (other.items, other.tail) == (self.items, self.tail)

    def __hash__(self) -> int:
        return hash((ImproperList, self.items, self.tail))

    def __repr__(self) -> str:
        return f"ImproperList({list(self.items)!r}, {self.tail!r})"


# -- decoding ----------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "max_depth", "pos")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth

    def take(self, count: int) -> bytes:
        start = self.pos
        end = start + count
        if end > len(self.data):
            raise EtfError("the term is truncated")
        self.pos = end
        return self.data[start:end]

    def byte(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            raise EtfError("the term is truncated")
        self.pos = pos + 1
        return self.data[pos]

    def u16(self) -> int:
        value: int = _u16(self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = _u32(self.take(4))[0]
        return value

    def count(self, count: int, each: int) -> int:
        """``count`` elements of at least ``each`` bytes must fit in what is left."""
        if count * each > len(self.data) - self.pos:
            raise EtfError("an element count exceeds the bytes left")
        return count

    def term(self, depth: int) -> Any:
        if depth > self.max_depth:
            raise EtfError(f"the term nests deeper than {self.max_depth}")
        tag = self.byte()
        if tag == _BINARY:
            raw = self.take(self.u32())
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        if tag == _SMALL_INTEGER:
            return self.byte()
        if tag == _INTEGER:
            value: int = _i32(self.take(4))[0]
            return value
        if tag in (_ATOM, _SMALL_ATOM, _ATOM_UTF8, _SMALL_ATOM_UTF8):
            return self.atom(tag)
        if tag == _MAP:
            return self.map(depth)
        if tag in (_SMALL_TUPLE, _LARGE_TUPLE):
            arity = self.byte() if tag == _SMALL_TUPLE else self.count(self.u32(), 1)
            return tuple([self.term(depth + 1) for _ in range(arity)])
        if tag == _NIL:
            return []
        if tag == _STRING:
            return list(self.take(self.u16()))
        if tag == _LIST:
            return self.list(depth)
        if tag == _NEW_FLOAT:
            return _finite(_f64(self.take(8))[0])
        if tag in (_SMALL_BIG, _LARGE_BIG):
            size = self.byte() if tag == _SMALL_BIG else self.u32()
            if size > MAX_BIGNUM_BYTES:
                raise EtfError(f"an integer is over {MAX_BIGNUM_BYTES} bytes")
            negative = self.byte() != 0
            magnitude = int.from_bytes(self.take(size), "little")
            return -magnitude if negative else magnitude
        if tag == _FLOAT:
            return _float_text(self.take(31))
        if tag == _BIT_BINARY:
            size = self.u32()
            bits = self.byte()
            if (bits == 0) != (size == 0) or bits > 8:
                raise EtfError("a bitstring's bit count is invalid")
            raw = self.take(size)
            if bits in (0, 8):
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    return raw
            return BitString(raw, bits)
        if tag == _COMPRESSED:
            raise EtfError("a compressed term inside a term")
        raise EtfError(f"{_REFUSED.get(tag, f'unknown tag {tag}')} terms are refused")

    def atom(self, tag: int) -> Any:
        size = self.u16() if tag in (_ATOM, _ATOM_UTF8) else self.byte()
        raw = self.take(size)
        if tag in (_ATOM, _SMALL_ATOM):
            name = raw.decode("latin-1")
        else:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise EtfError("an atom is not valid UTF-8") from None
        if len(name) > MAX_ATOM_CHARACTERS:
            raise EtfError(f"an atom is over {MAX_ATOM_CHARACTERS} characters")
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "nil":
            return None
        atom = object.__new__(Atom)
        object.__setattr__(atom, "name", name)
        return atom

    def map(self, depth: int) -> dict[Any, Any]:
        arity = self.count(self.u32(), 2)
        result: dict[Any, Any] = {}
        for _ in range(arity):
            key = self.term(depth + 1)
            try:
                duplicate = key in result
            except TypeError:
                raise EtfError("a map key is a list or a map, which Python cannot hold as a key") from None
            if duplicate:
                raise EtfError("a map holds the same key twice (as Python compares keys)")
            result[key] = self.term(depth + 1)
        return result

    def list(self, depth: int) -> Any:
        length = self.count(self.u32(), 1)
        items = [self.term(depth + 1) for _ in range(length)]
        tail = self.term(depth + 1)
        if not items:
            return tail  # no cells: the term is the tail itself
        if isinstance(tail, list):
            items.extend(tail)
            return items
        if isinstance(tail, ImproperList):
            return ImproperList(items + list(tail.items), tail.tail)
        return ImproperList(items, tail)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise EtfError("a float is not finite")
    return value


def _float_text(raw: bytes) -> float:
    text = raw.split(b"\0", 1)[0]
    if _FLOAT_TEXT.fullmatch(text) is None:
        raise EtfError("a text float is malformed")
    return _finite(float(text.replace(b",", b".")))


def _inflate(data: bytes, max_size: int) -> bytes:
    if len(data) < 4:
        raise EtfError("the compressed term is truncated")
    size: int = _u32(data)[0]
    if size > max_size:
        raise EtfError(f"the compressed term would inflate to over {max_size} bytes")
    if size == 0:  # (and zlib reads a limit of 0 as no limit at all)
        raise EtfError("the compressed term is empty")
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(data[4:], size)
        if len(inflated) == size and not inflater.eof and inflater.decompress(inflater.unconsumed_tail, 1):
            raise EtfError("the compressed term inflates to more than its declared size")
    except zlib.error:
        raise EtfError("the compressed term is corrupt") from None
    if len(inflated) != size or not inflater.eof:
        raise EtfError("the compressed term does not inflate to its declared size")
    return inflated


def binary_to_term(data: bytes, *, max_depth: int = MAX_DEPTH, max_size: int = MAX_SIZE) -> Any:
    """Decode one term (``:erlang.binary_to_term/1``, safely); bytes after it are ignored.

    Raises :class:`EtfError` for anything but a term of the types in the
    module docstring, or one beyond the limits.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"binary_to_term expects bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:1] != b"\x83":
        raise EtfError("the term lacks the version byte 131")
    data = _inflate(data[2:], max_size) if data[1:2] == bytes([_COMPRESSED]) else data[1:]
    reader = _Reader(data, max_depth)
    try:
        return reader.term(1)
    except RecursionError:  # pragma: no cover - max_depth keeps well inside the stack
        raise EtfError("the term nests too deeply") from None


# -- encoding ----------------------------------------------------------------------


def _atom(name: str, out: bytearray, minor_version: int) -> None:
    if minor_version == 1:
        try:
            raw = name.encode("latin-1")
        except UnicodeEncodeError:
            pass
        else:
            out += b"d" + _pack_u16(len(raw)) + raw
            return
    raw = name.encode("utf-8")
    if len(raw) < 256:
        out += b"w" + bytes([len(raw)]) + raw
    else:
        out += b"v" + _pack_u16(len(raw)) + raw


def _integer(value: int, out: bytearray) -> None:
    if 0 <= value <= 255:
        out += bytes([_SMALL_INTEGER, value])
    elif -(2**31) <= value < 2**31:
        out += b"b" + _pack_i32(value)
    else:
        magnitude = abs(value)
        size = (magnitude.bit_length() + 7) // 8
        if size > MAX_BIGNUM_BYTES:
            raise EtfError(f"an integer is over {MAX_BIGNUM_BYTES} bytes")
        sign = b"\x01" if value < 0 else b"\x00"
        head = bytes([_SMALL_BIG, size]) if size < 256 else b"o" + _pack_u32(size)
        out += head + sign + magnitude.to_bytes(size, "little")


def sort_key(term: Any) -> Any:
    """A key ordering terms as Erlang orders map keys (integers before floats).

    number < atom < tuple < map < [] < list < bitstring; within a type, by value
    (atoms by name, tuples by size then elements, binaries bytewise).
    """
    kind = type(term)
    if kind is str:
        return (10, term.encode("utf-8", "surrogatepass"), 0)
    if kind is bool:
        return (1, "true" if term else "false")
    if term is None:
        return (1, "nil")
    if kind is int:
        return (0, 0, term)
    if kind is Atom:
        return (1, term.name)
    if kind is bytes or kind is bytearray:
        return (10, bytes(term), 0)
    if kind is float:
        return (0, 1, term)
    if isinstance(term, tuple):
        return (6, len(term), *map(sort_key, term))
    if isinstance(term, dict):
        keys = sorted(dict.keys(term), key=sort_key)
        return (7, len(keys), *map(sort_key, keys), *(sort_key(dict.__getitem__(term, k)) for k in keys))
    if isinstance(term, list):
        return (9, *map(sort_key, term)) if term else (8,)
    if kind is ImproperList:
        return (9, *map(sort_key, term.items), sort_key(term.tail))
    if kind is BitString:
        return (10, term.data, term.bits)
    if isinstance(term, str | bytes | float | int):  # subclasses (IntEnum, Markup...)
        return sort_key(_base(term))
    raise EtfError(f"{kind.__name__} values have no Erlang term")


class _Writer:
    __slots__ = ("max_depth", "minor_version", "out")

    def __init__(self, minor_version: int, max_depth: int) -> None:
        self.out = bytearray(b"\x83")
        self.minor_version = minor_version
        self.max_depth = max_depth

    def term(self, term: Any, depth: int) -> None:
        if depth > self.max_depth:
            raise EtfError(f"the value nests deeper than {self.max_depth}")
        out = self.out
        kind = type(term)
        if kind is str:
            try:
                raw = term.encode("utf-8")
            except UnicodeEncodeError:
                raise EtfError("a str holds a lone surrogate, which is not UTF-8") from None
            out += b"m" + _pack_u32(len(raw)) + raw
        elif kind is bool:
            _atom("true" if term else "false", out, self.minor_version)
        elif term is None:
            _atom("nil", out, self.minor_version)
        elif kind is int:
            _integer(term, out)
        elif kind is dict or isinstance(term, dict):
            self.map(term, depth)
        elif kind is list or isinstance(term, list):
            self.list(term, depth)
        elif kind is Atom:
            _atom(term.name, out, self.minor_version)
        elif kind is bytes or kind is bytearray:
            out += b"m" + _pack_u32(len(term)) + term
        elif kind is float:
            if not math.isfinite(term):
                raise EtfError("a float is not finite (Erlang has no NaN or infinity)")
            out += b"F" + _pack_f64(term)
        elif isinstance(term, tuple):
            arity = len(term)
            out += bytes([_SMALL_TUPLE, arity]) if arity < 256 else b"i" + _pack_u32(arity)
            for element in term:
                self.term(element, depth + 1)
        elif kind is ImproperList:
            out += b"l" + _pack_u32(len(term.items))
            for element in term.items:
                self.term(element, depth + 1)
            self.term(term.tail, depth + 1)
        elif kind is BitString:
            out += b"M" + _pack_u32(len(term.data)) + bytes([term.bits]) + term.data
        elif isinstance(term, str | bytes | float | int):  # subclasses (IntEnum, Markup...)
            self.term(_base(term), depth)
        else:
            raise EtfError(f"{kind.__name__} values have no Erlang term")

    def list(self, items: list[Any], depth: int) -> None:
        out = self.out
        if not items:
            out += b"j"
            return
        if len(items) <= 0xFFFF and all(type(item) is int and 0 <= item <= 255 for item in items):
            out += b"k" + _pack_u16(len(items)) + bytes(items)
            return
        out += b"l" + _pack_u32(len(items))
        for item in items:
            self.term(item, depth + 1)
        out += b"j"

    def map(self, term: dict[Any, Any], depth: int) -> None:
        keyed = sorted(((sort_key(key), key) for key in dict.keys(term)), key=_first)
        for (before, _), (after, key) in itertools.pairwise(keyed):
            if before == after:
                raise EtfError(f"two keys are the same Erlang term ({key!r})")
        self.out += b"t" + _pack_u32(len(keyed))
        for _, key in keyed:
            self.term(key, depth + 1)
            self.term(dict.__getitem__(term, key), depth + 1)


def _base(term: str | bytes | float | int) -> Any:
    """A subclass's value as its plain built-in type."""
    if isinstance(term, str):
        return str(term)
    if isinstance(term, bytes):
        return bytes(term)
    if isinstance(term, float):
        return float(term)
    return int(term)


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def term_to_binary(term: Any, *, minor_version: int = 1, max_depth: int = MAX_DEPTH) -> bytes:
    """Encode ``term`` as ``:erlang.term_to_binary/2`` does with ``minor_version``.

    ``minor_version=1`` (the default) is what OTP 25 and older write;
    ``minor_version=2`` is OTP 26+'s default. Raises :class:`EtfError` for a
    value with no Erlang term (see the module docstring), or nested deeper than
    ``max_depth``.
    """
    if minor_version not in (1, 2):
        raise ValueError(f"term_to_binary expects minor_version 1 or 2, got {minor_version!r}")
    writer = _Writer(minor_version, max_depth)
    try:
        writer.term(term, 1)
    except RecursionError:  # pragma: no cover - max_depth keeps well inside the stack
        raise EtfError("the value nests too deeply") from None
    return bytes(writer.out)


# -- typed JSON (the vectors' notation; also what the CLI prints) ---------------------


def to_typed_json(term: Any) -> Any:
    """``term`` as typed JSON: the notation of the Plug test vectors.

    ``null``/``true``/``false``, JSON strings for UTF-8 binaries, ``{"bytes_b64": ...}``
    for other binaries, ``{"atom": name}``, ``{"float": x}``, ``{"tuple": [...]}``, JSON
    objects for maps whose keys are all strings, else ``{"map": [[k, v], ...]}``;
    and, beyond the vectors, ``{"improper_list": [[...], tail]}`` and
    ``{"bitstring_b64": ..., "bits": n}``.
    """
    if term is None or type(term) is bool or type(term) is str or type(term) is int:
        return term
    if isinstance(term, dict):
        pairs = sorted(dict.items(term), key=lambda pair: sort_key(pair[0]))
        if all(type(key) is str for key, _ in pairs):
            return {key: to_typed_json(value) for key, value in pairs}
        return {"map": [[to_typed_json(key), to_typed_json(value)] for key, value in pairs]}
    if isinstance(term, list):
        return [to_typed_json(item) for item in term]
    if isinstance(term, tuple):
        return {"tuple": [to_typed_json(item) for item in term]}
    if type(term) is Atom:
        return {"atom": term.name}
    if isinstance(term, bytes | bytearray):
        return {"bytes_b64": base64.b64encode(term).decode()}
    if type(term) is float:
        return {"float": term}
    if type(term) is ImproperList:
        return {"improper_list": [[to_typed_json(item) for item in term.items], to_typed_json(term.tail)]}
    if type(term) is BitString:
        return {"bitstring_b64": base64.b64encode(term.data).decode(), "bits": term.bits}
    if isinstance(term, str | bytes | float | int):  # subclasses (IntEnum, Markup...)
        return to_typed_json(_base(term))
    raise EtfError(f"{type(term).__name__} values have no Erlang term")


_SPECIAL_ATOMS: dict[str, Any] = {"true": True, "false": False, "nil": None}


def _object(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "atom":
            return _SPECIAL_ATOMS[inner] if inner in _SPECIAL_ATOMS else Atom(inner)
        if tag == "bytes_b64":
            return base64.b64decode(inner, validate=True)
        if tag == "float":
            return float(inner)
        if tag == "tuple":
            return tuple(from_typed_json(item) for item in inner)
        if tag == "map":
            return {from_typed_json(key): from_typed_json(item) for key, item in inner}
        if tag == "improper_list":
            items, tail = inner
            return ImproperList([from_typed_json(item) for item in items], from_typed_json(tail))
    if set(value) == {"bitstring_b64", "bits"}:
        return BitString(base64.b64decode(value["bitstring_b64"], validate=True), value["bits"])
    return {key: from_typed_json(item) for key, item in value.items()}


def from_typed_json(value: Any) -> Any:
    """The term typed JSON describes (the inverse of :func:`to_typed_json`).

    A JSON object with a single key ``atom``, ``bytes_b64``, ``float``,
    ``tuple``, ``map`` or ``improper_list`` is read as that notation, so such
    maps cannot be written as plain objects (the vectors never need to).
    """
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list):
        return [from_typed_json(item) for item in value]
    return value
