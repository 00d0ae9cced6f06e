"""What DBSC keeps: the binding in the session's record, challenge records, and the bound cookie.

- **The binding** (the public key, the DBSC session identifier, the bound
  cookie's generation, when it was registered and last refreshed) is one
  reserved *field* of the session's server-side record, :data:`FIELD`. A
  store applies a request's field changes atomically to the record as it is
  now, and the engine never names this field in a change of the session's
  own data, so a concurrent request that writes the session keeps the binding
  and the binding is written without overwriting the session's data. The
  field's name is the JSON escape of ``"\\x00dbsc"``: every store keeps it, and
  it is taken out before the data is decoded, so the app never sees it. A
  renewed session (new ID: ``renew()``, ``log_in()``) does not carry it: a
  new ID is a new binding.
- **Challenges** are random 256-bit nonces with their issue time (checked
  against the server's clock on use), each a record of its own with the
  challenge's lifetime as TTL, under a key derived from the session's key and
  the nonce (so a challenge made for one session is no use for another). A
  proof's challenge is consumed by *deleting* its record: the store says
  whether a live record was there, from the deletion itself, so of two
  concurrent proofs with the same challenge exactly one wins, on every store.
- **The bound cookie** is ``b1.<base64url(expires u64 | generation u32 |
  HMAC-SHA256)>``: the MAC (an HKDF subkey of the key ring, purpose
  ``dbsc-bound``) covers the version tag, the DBSC session identifier, the
  expiry and the generation. It is checked against the server's clock and the
  binding's generation, so its short life is enforced server-side, not only
  by ``Max-Age``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any, NamedTuple

from . import _record
from ._codec import b64decode, b64encode
from ._keys import KeyRing
from .errors import InvalidCookie

__all__ = [
    "FIELD",
    "Binding",
    "BoundCookies",
    "challenge_age",
    "challenge_key",
    "challenge_record",
    "dump_binding",
    "load_binding",
    "new_challenge",
    "new_identifier",
]

#: The reserved field holding a session's binding (``"\x00dbsc"`` as JSON escapes it).
FIELD = "\\u0000dbsc"
_FIELD_VERSION = 1
_TAG = "b1."
_BODY = struct.Struct("!QI")
_MAC_SIZE = 32
_COOKIE_BYTES = _BODY.size + _MAC_SIZE
_MAX_FIELD = 4096


class Binding(NamedTuple):
    """A session's DBSC binding, as its record holds it."""

    identifier: str  #: the DBSC session identifier the browser names on refresh
    alg: str  #: "ES256" or "RS256", fixed at registration
    jwk: dict[str, str]  #: the public key (its public members only)
    generation: int  #: bumped by every refresh; bound cookies of older generations lapse
    registered_at: int
    refreshed_at: int


def new_identifier() -> str:
    return b64encode(os.urandom(16))


def new_challenge(now: int) -> str:
    """A fresh challenge: its issue time (8 bytes) and 256 random bits, base64url.

    The time is not secret and needs no MAC: the challenge's record key is
    derived from the whole string, so an altered time names no record.
    """
    return b64encode(struct.pack("!Q", now) + os.urandom(32))


def challenge_age(challenge: str, now: int) -> int | None:
    """Seconds since ``challenge`` was issued (None if it is not one of ours)."""
    try:
        raw = b64decode(challenge)
    except InvalidCookie:
        return None
    if len(raw) != 40:
        return None
    return now - int.from_bytes(raw[:8], "big")


def dump_binding(binding: Binding) -> str:
    return _record.dump_text({"v": _FIELD_VERSION, **binding._asdict()})


def load_binding(text: str) -> Binding:
    """The binding a record's field holds; ``InvalidCookie("dbsc binding")`` if it is malformed."""
    try:
        if len(text) > _MAX_FIELD:
            raise ValueError("too large")
        value: Any = _record.load_object(text)
        if type(value) is not dict or value.get("v") != _FIELD_VERSION:
            raise ValueError("not a binding")
        binding = Binding(
            value["identifier"],
            value["alg"],
            value["jwk"],
            value["generation"],
            value["registered_at"],
            value["refreshed_at"],
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidCookie("dbsc binding") from None
    if (
        type(binding.identifier) is not str
        or binding.alg not in ("ES256", "RS256")
        or type(binding.jwk) is not dict
        or not all(type(v) is str for v in binding.jwk.values())
        or type(binding.generation) is not int
        or type(binding.registered_at) is not int
        or type(binding.refreshed_at) is not int
    ):
        raise InvalidCookie("dbsc binding")
    return binding


def challenge_key(session_key: str, challenge: str) -> str:
    """The store key of ``challenge``'s record: in the session's group, bound to the session."""
    group = session_key.split("/", 1)[0]
    digest = hashlib.sha256(b"sessionware dbsc challenge|" + session_key.encode() + b"|" + challenge.encode())
    return group + "/" + b64encode(digest.digest())


def challenge_record(now: int) -> bytes:
    """The head a challenge record holds: a well-formed record head, so tools reading
    every record (the CLI) see an ordinary, anonymous record."""
    return _record.pack_head(now, now, None, b'{"dbsc":"challenge"}')


class BoundCookies:
    """Makes and checks bound-cookie values under the key ring's ``dbsc-bound`` subkeys."""

    __slots__ = ("_subkeys",)

    def __init__(self, keys: KeyRing, context: str) -> None:
        self._subkeys = keys.subkeys("dbsc-bound", context)

    @staticmethod
    def _message(identifier: str, body: bytes) -> bytes:
        return _TAG.encode() + identifier.encode() + b"|" + body

    def make(self, identifier: str, expires: int, generation: int) -> str:
        body = _BODY.pack(expires, generation)
        mac = hmac.new(self._subkeys[0], self._message(identifier, body), hashlib.sha256).digest()
        return _TAG + b64encode(body + mac)

    def check(self, value: str, binding: Binding, now: int) -> str | None:
        """None if ``value`` is a live bound cookie of ``binding``, else why not."""
        if not value.startswith(_TAG) or len(value) > 80:
            return "malformed bound cookie"
        try:
            raw = b64decode(value[3:])
        except InvalidCookie:
            return "malformed bound cookie"
        if len(raw) != _COOKIE_BYTES:
            return "malformed bound cookie"
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        message = self._message(binding.identifier, body)
        for subkey in self._subkeys:
            if hmac.compare_digest(hmac.new(subkey, message, hashlib.sha256).digest(), mac):
                break
        else:
            return "bound cookie does not verify (another session's, or altered)"
        expires, generation = _BODY.unpack(body)
        # Valid through the second it expires in: the browser counts Max-Age from the
        # fraction of the second it got the cookie, so a stricter check would refuse a
        # cookie the browser still holds (and it would not refresh before sending it).
        if expires < now:
            return "bound cookie expired"
        if generation < binding.generation - 1:
            return "bound cookie of an older generation"
        return None
