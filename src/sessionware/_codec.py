"""Cookie value formats, version 1.

Every value starts with a version tag naming its format; the decoder dispatches
on that tag and the algorithm is fixed by it, never read from the value.

``e1.`` encrypted (the default for :class:`~sessionware.CookieStore`)::

    "e1." base64url(key_id[4] || nonce[12] || AES-256-GCM(plaintext) || tag[16])

    The associated data is ``"e1." || key_id``; the key is the ``session-encrypt``
    subkey bound to the cookie name.

``s1.`` signed only; the client can read the payload::

    "s1." base64url(plaintext) "." base64url(key_id[4] || HMAC-SHA256[32])

    The MAC covers the text ``"s1." base64url(plaintext)`` under the
    ``session-sign`` subkey bound to the cookie name.

``i1.`` a server-side session ID::

    "i1." base64url(key_id[4] || id[40] || HMAC-SHA256(id)[32])
    id = group[8] || random[32]

    A forged or altered ID fails the MAC before any store is asked about it.
    The group is random for an anonymous session and derived from the user
    (an HMAC of the user ID) for a logged-in one, so all of a user's sessions
    share it; stores that shard keep a group together (see ``store_key``).

base64url is unpadded. Decoding never raises anything but :class:`InvalidCookie`,
whose ``reason`` is one of ``size``, ``format``, ``version``, ``key``, ``mac``.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._keys import KEY_ID_SIZE, KeyRing
from .errors import InvalidCookie

__all__ = [
    "MAX_COOKIE_BYTES",
    "EncryptedCodec",
    "IdCodec",
    "SignedCodec",
    "b64decode",
    "b64encode",
]

#: Browsers keep at most 4096 bytes of cookie name plus value (RFC 6265bis §5.6).
MAX_COOKIE_BYTES = 4096

# base64url -> base64, and the standard alphabet's own "+", "/" and padding "=" to "!", which
# strict decoding refuses: only the unpadded url-safe alphabet gets through.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# The last character of an unpadded group carries unused bits, which must be zero
# (RFC 4648 §3.5) or one value would have several encodings.
_CANONICAL_LAST: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset(),
    frozenset("AQgw"),
    frozenset("AEIMQUYcgkosw048"),
)
_PADDING = (b"", b"", b"==", b"=")
_a2b = binascii.a2b_base64
_NONCE_SIZE = 12
_TAG_SIZE = 16
_MAC_SIZE = 32
GROUP_SIZE = 8
_RANDOM_SIZE = 32
_ID_SIZE = GROUP_SIZE + _RANDOM_SIZE
_E1_MIN = KEY_ID_SIZE + _NONCE_SIZE + _TAG_SIZE
# The e1. slices in EncryptedCodec.decode are written out for speed:
assert KEY_ID_SIZE == 4
assert _NONCE_SIZE == 12


def b64encode(data: bytes) -> str:
    """Unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    """Decode canonical unpadded base64url; anything else raises ``InvalidCookie("format")``."""
    remainder = len(text) & 3
    if remainder and (remainder == 1 or text[-1] not in _CANONICAL_LAST[remainder]):
        raise InvalidCookie("format")
    try:
        return _a2b(text.encode().translate(_TO_STANDARD) + _PADDING[remainder], strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise InvalidCookie("format") from None


def _verify_mac(keys: KeyRing, subkeys: tuple[bytes, ...], key_id: bytes, message: bytes, mac: bytes) -> bool:
    """Check an HMAC-SHA256 in constant time under the secret(s) ``key_id`` names.

    Returns whether an older (not the current) secret verified it; raises
    ``InvalidCookie`` ("key" for an unknown key id, "mac" for a bad MAC).
    """
    indexes = keys.indexes_for(key_id)
    if not indexes:
        raise InvalidCookie("key")
    for index in indexes:
        if hmac.compare_digest(hmac.new(subkeys[index], message, hashlib.sha256).digest(), mac):
            return index != 0
    raise InvalidCookie("mac")


class EncryptedCodec:
    """AES-256-GCM; confidentiality and integrity. See the module docstring."""

    __slots__ = ("_aeads", "_by_id", "_current", "_keys")
    tag = "e1."

    def __init__(self, keys: KeyRing, cookie_name: str) -> None:
        self._keys = keys
        self._by_id = keys.by_id
        self._aeads = tuple(AESGCM(k) for k in keys.subkeys("session-encrypt", cookie_name))
        # What every value made now starts with: the current key's ID, and the associated data.
        self._current = (keys.current_id, b"e1." + keys.current_id)

    def encode(self, plaintext: bytes) -> str:
        key_id, associated = self._current
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._aeads[0].encrypt(nonce, plaintext, associated)
        return "e1." + b64encode(key_id + nonce + sealed)

    def decode(self, value: str) -> tuple[bytes, bool]:
        """Return ``(plaintext, stale)``; ``stale`` means an older secret verified it."""
        if value[:3] != "e1.":
            raise InvalidCookie("version")
        raw = b64decode(value[3:])
        if len(raw) < _E1_MIN:
            raise InvalidCookie("format")
        key_id = raw[:4]
        indexes = self._by_id.get(key_id)
        if indexes is None:
            raise InvalidCookie("key")
        nonce = raw[4:16]
        sealed = raw[16:]
        associated = b"e1." + key_id
        for index in indexes:
            try:
                return self._aeads[index].decrypt(nonce, sealed, associated), index != 0
            except InvalidTag:
                continue
        raise InvalidCookie("mac")


class SignedCodec:
    """HMAC-SHA256 only: integrity, no confidentiality. See the module docstring."""

    __slots__ = ("_keys", "_subkeys")
    tag = "s1."

    def __init__(self, keys: KeyRing, cookie_name: str) -> None:
        self._keys = keys
        self._subkeys = keys.subkeys("session-sign", cookie_name)

    def encode(self, plaintext: bytes) -> str:
        body = "s1." + b64encode(plaintext)
        mac = hmac.new(self._subkeys[0], body.encode(), hashlib.sha256).digest()
        return body + "." + b64encode(self._keys.current_id + mac)

    def decode(self, value: str) -> tuple[bytes, bool]:
        """Return ``(plaintext, stale)``; ``stale`` means an older secret verified it."""
        if not value.startswith("s1."):
            raise InvalidCookie("version")
        body, dot, signature_text = value.rpartition(".")
        if not dot or len(body) < 4:
            raise InvalidCookie("format")
        signature = b64decode(signature_text)
        if len(signature) != KEY_ID_SIZE + _MAC_SIZE:
            raise InvalidCookie("format")
        key_id, mac = signature[:KEY_ID_SIZE], signature[KEY_ID_SIZE:]
        stale = _verify_mac(self._keys, self._subkeys, key_id, body.encode(), mac)
        return b64decode(body[3:]), stale


class IdCodec:
    """Signed random session IDs for server-side stores."""

    __slots__ = ("_keys", "_subkeys")
    tag = "i1."

    def __init__(self, keys: KeyRing, cookie_name: str) -> None:
        self._keys = keys
        self._subkeys = keys.subkeys("session-id", cookie_name)

    @staticmethod
    def new_id(group: bytes | None = None) -> bytes:
        """A fresh ID: ``group`` (random if None) and 256 bits from the OS's CSPRNG."""
        return (group or os.urandom(GROUP_SIZE)) + os.urandom(_RANDOM_SIZE)

    def encode(self, session_id: bytes) -> str:
        mac = hmac.new(self._subkeys[0], session_id, hashlib.sha256).digest()
        return "i1." + b64encode(self._keys.current_id + session_id + mac)

    def decode(self, value: str) -> tuple[bytes, bool]:
        """Return ``(session_id, stale)``; ``stale`` means an older secret verified it."""
        if not value.startswith("i1."):
            raise InvalidCookie("version")
        raw = b64decode(value[3:])
        if len(raw) != KEY_ID_SIZE + _ID_SIZE + _MAC_SIZE:
            raise InvalidCookie("format")
        session_id = raw[KEY_ID_SIZE : KEY_ID_SIZE + _ID_SIZE]
        mac = raw[KEY_ID_SIZE + _ID_SIZE :]
        return session_id, _verify_mac(self._keys, self._subkeys, raw[:KEY_ID_SIZE], session_id, mac)

    @staticmethod
    def store_key(session_id: bytes) -> str:
        """The key a store files the session under: ``"<group>/<hash>"``, never the ID itself."""
        return b64encode(session_id[:GROUP_SIZE]) + "/" + b64encode(hashlib.sha256(session_id).digest())
