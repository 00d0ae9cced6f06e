"""The few Structured Field (RFC 9651) shapes DBSC's headers use, parsed and serialised.

Why not a general Structured Field library (``http-sfv``): the values that
matter arrive in two forms, the spec's sf-string (``"value"``) and
Chromium's bare value, which is often not a valid sf-token (a session
identifier may start with a digit, ``-`` or ``_``), so a strict parser would
refuse what the one shipping browser sends. What DBSC needs is small: read one
string-or-bare item (:func:`parse_item`), and write a list of inner lists of
tokens with string parameters (``Secure-Session-Registration``) or of strings
with string parameters (``Secure-Session-Challenge``). Both are done here,
strictly, with a size cap, and never raise on client input (a None instead).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["MAX_ITEM", "inner_list", "parse_item", "sf_string", "sf_token", "string_item"]

#: The longest header value read at all (a proof JWT with an RSA-4096 key fits well within).
MAX_ITEM = 8192

_BARE = re.compile(r"[A-Za-z0-9\-_.~+/=]+")  # base64url, JWT's dots, and what bare ids may hold
_STRING_BODY = re.compile(r'(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*')
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_PARAM = re.compile(r";[ ]*([a-z*][a-z0-9_\-.*]*)(?:=([^;]*))?")


def parse_item(value: str | None) -> str | None:
    """The value of a header holding one string, quoted (sf-string) or bare; None if malformed.

    Parameters after the item (``;name=value``) are ignored, as the spec
    allows unknown parameters. Surrounding spaces are dropped; anything else
    -- a list, an inner list, a byte sequence, control characters, an
    oversize value -- gives None.
    """
    if value is None or len(value) > MAX_ITEM:
        return None
    text = value.strip(" \t")
    if text.startswith('"'):
        body = _STRING_BODY.match(text, 1)
        assert body is not None  # the pattern matches the empty string
        end = body.end()
        if end >= len(text) or text[end] != '"':
            return None
        rest = text[end + 1 :]
        if rest and not _params_only(rest):
            return None
        return body.group().replace('\\"', '"').replace("\\\\", "\\")
    bare, _, rest = text.partition(";")
    bare = bare.rstrip(" \t")
    if not _BARE.fullmatch(bare):
        return None
    if rest and not _params_only(";" + rest):
        return None
    return bare


def _params_only(rest: str) -> bool:
    """Whether ``rest`` is nothing but well-formed parameters (``;key`` or ``;key=value``)."""
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None:
            return False
        position = match.end()
    return True


def sf_string(value: str) -> str:
    """``value`` as an sf-string; ValueError for characters an sf-string cannot hold."""
    if any(not (0x20 <= ord(c) <= 0x7E) for c in value):
        raise ValueError("an sf-string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sf_token(value: str) -> str:
    """``value`` as an sf-token; ValueError if it is not one."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{value!r} is not an sf-token")
    return value


def _params(params: Sequence[tuple[str, str]]) -> str:
    parts = []
    for key, value in params:
        if not _KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not an sf-key")
        parts.append(f";{key}={sf_string(value)}")
    return "".join(parts)


def inner_list(tokens: Sequence[str], params: Sequence[tuple[str, str]]) -> str:
    """One list member: an inner list of tokens with string parameters, ``(a b);k="v"``."""
    return "(" + " ".join(sf_token(token) for token in tokens) + ")" + _params(params)


def string_item(value: str, params: Sequence[tuple[str, str]]) -> str:
    """One list member: a string with string parameters, ``"v";k="w"``."""
    return sf_string(value) + _params(params)
