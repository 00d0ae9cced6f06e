"""Plain data out of a pickle, without unpickling it.

Django's cache layer (``RedisCache``, django-redis) pickles the session dict it
stores. ``pickle.loads`` runs whatever the bytes ask for -- any importable
callable, with any arguments -- so sessionware never calls it. This module
reads the opcode stream with :func:`pickletools.genops`, which parses and
executes nothing, and builds the value itself from the opcodes that make
plain data: dicts, lists, tuples (as lists), strings, integers, floats,
booleans and None, with the memo that links them. Every other opcode -- the
ones that name a global, call it, build or extend an object (``GLOBAL``,
``STACK_GLOBAL``, ``REDUCE``, ``BUILD``, ``NEWOBJ``, ``INST``, ``OBJ``,
``EXT*``, persistent IDs), and bytes, sets and buffers, which JSON cannot
hold -- refuses the whole pickle.

What comes out is JSON's data model: a value that is not (a dict key that is
not a string, a list that holds itself) refuses it too.
"""

from __future__ import annotations

import math
import pickletools
import struct
from typing import Any

__all__ = ["NotPlainData", "plain_data"]

#: The largest pickle read: a session record, not a bulk import.
MAX_BYTES = 1 << 20
#: The most opcodes read, so a crafted pickle cannot make the parser loop for long.
MAX_OPCODES = 200_000
#: The most values (a value met twice through the memo counts twice) and the deepest nesting.
MAX_VALUES = 200_000
MAX_DEPTH = 64
#: The widest integer: wider ones are not a session's, and would not print as JSON.
MAX_INT_BITS = 256
#: The most data, as JSON would write it (strings counted each time the memo repeats them).
MAX_SIZE = 1 << 20


class NotPlainData(ValueError):
    """The pickle holds, or asks for, something other than plain data; the reason is the message."""


class _Mark:
    """Where a MARK opcode put the start of a run of items on the stack."""


_MARK = _Mark()
#: The opcodes whose argument is the value itself.
_SCALARS = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "BINFLOAT", "INT", "LONG", "FLOAT"})
#: The opcodes that are the value (they have no argument).
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_STRINGS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_IGNORED = frozenset({"PROTO", "FRAME"})


def plain_data(raw: bytes) -> Any:
    """The value ``raw`` pickles, if it is plain data; else :class:`NotPlainData`."""
    if len(raw) > MAX_BYTES:
        raise NotPlainData(f"a pickle of {len(raw)} bytes, over {MAX_BYTES}")
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(raw)):
            if count >= MAX_OPCODES:
                raise NotPlainData(f"over {MAX_OPCODES} opcodes")
            name = opcode.name
            if name in _IGNORED:
                continue
            if name in _SCALARS or name in _STRINGS:  # protocol 0's INT 01 and 00 are True and False
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name in ("EMPTY_LIST", "EMPTY_TUPLE"):
                stack.append([])
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "SETITEM":
                value = stack.pop()
                key = stack.pop()
                _setitems(stack[-1], [key, value])  # refuses a MARK as the key or the value
            elif name == "SETITEMS":
                items = _pop_mark(stack)
                _setitems(stack[-1], items)
            elif name == "APPEND":
                item = stack.pop()
                _extend(stack[-1], [item])
            elif name == "APPENDS":
                items = _pop_mark(stack)
                _extend(stack[-1], items)
            elif name == "DICT":
                items = _pop_mark(stack)
                built: dict[str, Any] = {}
                _setitems(built, items)
                stack.append(built)
            elif name in ("LIST", "TUPLE"):
                stack.append(_pop_mark(stack))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                size = int(name[-1])
                items = stack[-size:]
                if len(items) != size or any(item is _MARK for item in items):
                    raise NotPlainData(f"{name} without {size} items")
                del stack[-size:]
                stack.append(items)
            elif name == "MEMOIZE":
                memo[len(memo)] = _top(stack)
            elif name in _PUT:
                memo[int(arg)] = _top(stack)  # type: ignore[arg-type]
            elif name in _GET:
                if arg not in memo:
                    raise NotPlainData(f"{name} of an unknown memo entry")
                stack.append(memo[arg])
            elif name == "STOP":
                if len(stack) != 1 or stack[0] is _MARK:
                    raise NotPlainData("STOP with no single value")
                value = stack[0]
                break
            else:
                raise NotPlainData(f"the opcode {name}: not plain data")
        else:
            raise NotPlainData("no STOP")
    except NotPlainData:
        raise
    except (
        ValueError,
        IndexError,
        TypeError,
        KeyError,
        OverflowError,
        EOFError,
        struct.error,
        Warning,
    ) as exc:
        # genops' own errors for bytes that are no pickle, or a stack too short for an opcode
        raise NotPlainData(f"not a well-formed pickle ({type(exc).__name__})") from exc
    _check(value)
    return value


def _check(value: Any) -> None:
    """Refuse what JSON cannot hold, walking ``value`` without recursion and within a budget.

    The memo lets a few bytes name one list many times over (a list of itself
    twice, nested 60 deep, is 2**60 values to a naive walk), and a list that
    holds itself: the budget and the depth limit stop both.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    visits = 0
    size = 0  # what the value weighs as JSON, roughly: its strings' lengths, and a little per value
    while pending:
        item, depth = pending.pop()
        visits += 1
        if visits > MAX_VALUES:
            raise NotPlainData(f"over {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise NotPlainData(f"nested over {MAX_DEPTH} deep (or a container holding itself)")
        kind = type(item)
        size += 8
        if kind is dict:
            size += sum(len(key) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif kind is list:
            pending.extend((child, depth + 1) for child in item)
        elif kind is str:
            size += len(item)
        elif kind is float:
            if not math.isfinite(item):
                raise NotPlainData(f"the float {item!r}: not JSON")
        elif kind is int:
            if item.bit_length() > MAX_INT_BITS:
                raise NotPlainData(f"an integer of {item.bit_length()} bits")
        elif kind is not bool and item is not None:  # only JSON's types; anything else is ours
            raise NotPlainData(f"a value of type {kind.__name__}")
        if size > MAX_SIZE:
            # A string met many times through the memo weighs each time: what the session
            # would write, not what the pickle holds.
            raise NotPlainData(f"over {MAX_SIZE} bytes of data")


def _top(stack: list[Any]) -> Any:
    """The value on top of the stack, which a MARK is not."""
    value = stack[-1]
    if value is _MARK:
        raise NotPlainData("a MARK where a value belongs")
    return value


def _pop_mark(stack: list[Any]) -> list[Any]:
    """The items since the last MARK, taken off the stack with it."""
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] is _MARK:
            items = stack[index + 1 :]  # no MARK among them: this is the last one
            del stack[index:]
            return items
    raise NotPlainData("no MARK")


def _setitems(target: Any, items: list[Any]) -> None:
    if type(target) is not dict or len(items) % 2:
        raise NotPlainData("SETITEMS on something that is not a dict")
    for index in range(0, len(items), 2):
        key, value = items[index], items[index + 1]
        if type(key) is not str:
            raise NotPlainData(f"a dict key of type {type(key).__name__}")
        if value is _MARK:
            raise NotPlainData("a MARK where a value belongs")
        target[key] = value


def _extend(target: Any, items: list[Any]) -> None:
    if type(target) is not list or any(item is _MARK for item in items):
        raise NotPlainData("APPENDS on something that is not a list")
    target.extend(items)
