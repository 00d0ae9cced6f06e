"""Secrets and the keys derived from them.

``secret_key_base`` is one secret or a list of them. **The first secret is the
current one: it signs and encrypts. Every secret in the list verifies.** To
rotate, put the new secret first and keep the old one after it until every
cookie made under it has expired or been re-issued; then remove it.

No secret is used directly. Each purpose (``"session"``, ``"id"``, ``"csrf"``,
...) and each cookie name gets its own 256-bit subkey, derived with HKDF-SHA256,
so a value made for one purpose or cookie is refused as another. Each secret
also has a 4-byte key id, carried in cookies, that selects the secret to verify
with without revealing anything about it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError

__all__ = ["KEY_ID_SIZE", "MIN_SECRET_BYTES", "KeyRing", "SecretInput"]

MIN_SECRET_BYTES = 32
KEY_ID_SIZE = 4
_MIN_DISTINCT_BYTES = 8
_HKDF_SALT = b"sessionware key derivation v1"

SecretInput = str | bytes | Sequence[str | bytes]

_HOW_TO = "generate one with: python -m sessionware gen-secret"


def _as_bytes(secret: object, owner: str) -> bytes:
    if isinstance(secret, str):
        return secret.encode("utf-8")
    if isinstance(secret, bytes | bytearray):
        return bytes(secret)
    raise ConfigurationError(
        f"{owner} expects secret_key_base to be a str, bytes or a list of them, got {type(secret).__name__}"
    )


def _check(secret: bytes, owner: str, position: str) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{owner} expects secret_key_base{position} to be at least {MIN_SECRET_BYTES} "
            f"bytes, got {len(secret)}; {_HOW_TO}"
        )
    if len(set(secret)) < _MIN_DISTINCT_BYTES:
        raise ConfigurationError(
            f"{owner} expects secret_key_base{position} to be random, but it repeats a few "
            f"characters; {_HOW_TO}"
        )


class KeyRing:
    """An ordered list of secrets and the subkeys derived from them.

    The first secret signs and encrypts; all of them verify. Secrets never
    appear in ``repr()`` or in exception messages.
    """

    __slots__ = ("_cache", "_secrets", "by_id", "current_id")

    def __init__(self, secret_key_base: SecretInput, *, owner: str = "sessionware") -> None:
        if isinstance(secret_key_base, str | bytes | bytearray):
            raw = [_as_bytes(secret_key_base, owner)]
            _check(raw[0], owner, "")
        else:
            try:
                items = list(secret_key_base)
            except TypeError:
                raise ConfigurationError(
                    f"{owner} expects secret_key_base to be a str, bytes or a list of them, "
                    f"got {type(secret_key_base).__name__}"
                ) from None
            if not items:
                raise ConfigurationError(
                    f"{owner} expects secret_key_base to hold at least one secret; {_HOW_TO}"
                )
            raw = [_as_bytes(item, owner) for item in items]
            for index, secret in enumerate(raw):
                _check(secret, owner, f"[{index}]")
            if len(set(raw)) != len(raw):
                raise ConfigurationError(f"{owner} expects the secrets in secret_key_base to differ")
        self._secrets: tuple[bytes, ...] = tuple(raw)
        ids = [hmac.new(s, b"sessionware key id", hashlib.sha256).digest()[:KEY_ID_SIZE] for s in raw]
        self.current_id: bytes = ids[0]
        # A key id selects candidate secrets; two secrets sharing an id (a 2**-32
        # chance) are both tried, so a collision can never lock anyone out.
        #: Key id -> positions of the secrets carrying it.
        self.by_id: dict[bytes, tuple[int, ...]] = {}
        for index, key_id in enumerate(ids):
            self.by_id[key_id] = (*self.by_id.get(key_id, ()), index)
        self._cache: dict[tuple[str, str], tuple[bytes, ...]] = {}

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._secrets)} secret(s) hidden>)"

    def __len__(self) -> int:
        return len(self._secrets)

    def subkeys(self, purpose: str, context: str) -> tuple[bytes, ...]:
        """The 32-byte subkeys for ``purpose`` bound to ``context``, in secret order."""
        cache_key = (purpose, context)
        keys = self._cache.get(cache_key)
        if keys is None:
            info = b"sessionware v1|" + purpose.encode() + b"|" + context.encode()
            keys = tuple(
                HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(s)
                for s in self._secrets
            )
            self._cache[cache_key] = keys
        return keys

    def indexes_for(self, key_id: bytes) -> tuple[int, ...]:
        """Positions of the secrets whose key id is ``key_id`` (usually one, or none)."""
        return self.by_id.get(key_id, ())
