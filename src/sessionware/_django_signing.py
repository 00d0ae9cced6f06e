"""Django's ``django.core.signing`` (``dumps``/``loads`` with the JSON serializer), read-only, stdlib only.

An app that leaves Django no longer has Django installed; this is what its
session data and signed-cookie sessions were made with: ``TimestampSigner``
with HMAC-SHA256 keyed by ``sha256(salt + "signer" + secret)``, a base62
timestamp, base64url JSON, zlib-compressed when that was shorter (a leading
``"."``). Nothing here is ever written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["Refused", "django_loads"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A decompressed payload larger than this is refused (a zip bomb costs nothing to make).
MAX_PAYLOAD = 1 << 20


class Refused(ValueError):
    """A legacy value that is not read; the message is the reason, for the debug log."""


def _b62_decode(text: str) -> int:
    if not text or text.startswith("-"):
        raise Refused("a malformed timestamp")
    number = 0
    for digit in text:
        index = _BASE62.find(digit)
        if index < 0:
            raise Refused("a malformed timestamp")
        number = number * 62 + index
    return number


def _signature(salt: str, value: str, secret: str | bytes) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    key = hashlib.sha256((salt + "signer").encode() + raw).digest()
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def django_loads(
    signed: str, *, secrets: Sequence[str | bytes], salt: str, max_age: int | None, now: int
) -> Any:
    """``django.core.signing.loads(signed, salt=salt, max_age=max_age)``, with ``secrets`` tried in order.

    Raises :class:`Refused` (with the reason) for a bad signature, an expired
    timestamp or a payload that is not JSON -- a pickle included, which is
    recognised and never unpickled.
    """
    value, sep, signature = signed.rpartition(":")
    if not sep:
        raise Refused("no signature")
    if not any(hmac.compare_digest(signature, _signature(salt, value, secret)) for secret in secrets):
        raise Refused("a bad signature (another app's value, or made under another SECRET_KEY)")
    payload, sep, stamp = value.rpartition(":")
    if not sep:
        raise Refused("no timestamp")
    if max_age is not None and now - _b62_decode(stamp) > max_age:
        raise Refused(f"a signature older than {max_age} seconds")
    compressed = payload.startswith(".")
    text = payload[1:] if compressed else payload
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if compressed:
            inflater = zlib.decompressobj()
            data = inflater.decompress(data, MAX_PAYLOAD)
            if inflater.unconsumed_tail:
                raise Refused(f"a payload over {MAX_PAYLOAD} bytes")
    except (binascii.Error, zlib.error):
        raise Refused("a payload that does not decode") from None
    if data[:1] == b"\x80":
        raise Refused("a pickled payload (Django's PickleSerializer): pickle is never unpickled")
    try:
        return json.loads(data.decode("latin-1"))
    except ValueError:
        raise Refused("a payload that is not JSON") from None
