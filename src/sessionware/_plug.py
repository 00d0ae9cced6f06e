"""Plug.Crypto's formats, byte for byte: key derivation, signed and encrypted tokens.

What ``Plug.Session``'s cookie store does with a serialized session (see
``../shared/PLUG.md`` in the project notes, and ``docs/phoenix.md``):

``SFMyNTY.`` signed (``Plug.Crypto.MessageVerifier``)::

    "SFMyNTY" "." b64url(payload) "." b64url(HMAC-SHA256(signing_key, "SFMyNTY." b64url(payload)))

    "SFMzODQ" (HMAC-SHA384) and "SFM1MTI" (HMAC-SHA512) are read too. The MAC
    covers the received text of the first two parts.

``XCP.`` encrypted, plug_crypto 2.x (``MessageEncryptor``)::

    "XCP." b64url(nonce[24] || tag[16] || XChaCha20-Poly1305(encryption_key, nonce, aad="A128GCM"))

``QTEyOEdDTQ.`` encrypted, plug_crypto 1.x (five parts; still read by 2.x)::

    "QTEyOEdDTQ" "." b64url(wrapped_cek) "." b64url(iv[12]) "." b64url(ciphertext) "." b64url(tag[16])
    ciphertext, tag = AES-GCM(cek[16], iv, aad="A128GCM")
    wrapped_cek     = AES-GCM(encryption_key[:32], iv2, aad=signing_key)(cek) || iv2   (ct || tag || iv2)

Keys come from ``Plug.Crypto.KeyGenerator``: PBKDF2-HMAC-<digest>(secret_key_base,
salt, iterations, length), cached per configuration as Plug caches them.

Reading is as lenient as Elixir's ``Base.url_decode64(padding: false)``: the
unused trailing bits of a part's last character are ignored and correct ``=``
padding is accepted. The cryptography is pyca/cryptography's (HMAC, AES-GCM,
PBKDF2) and libsodium's (XChaCha20-Poly1305, through PyNaCl).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ._codec import b64encode
from .errors import MissingDependency

__all__ = [
    "A128GCM_HEADER",
    "DIGESTS",
    "SIGNED_HEADER",
    "XCP_HEADER",
    "a128gcm_decrypt",
    "a128gcm_encrypt",
    "b64url_decode",
    "derive_key",
    "sign",
    "verify",
    "xcp_decrypt",
    "xcp_encrypt",
]

#: Plug.Crypto.KeyGenerator's digests, by the name Plug gives them (``:sha`` is SHA-1).
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
SIGNED_HEADER = "SFMyNTY"  # base64url("HS256")
XCP_HEADER = "XCP."
A128GCM_HEADER = "QTEyOEdDTQ"  # base64url("A128GCM")
_HMACS = {"SFMyNTY": hashlib.sha256, "SFMzODQ": hashlib.sha384, "SFM1MTI": hashlib.sha512}
_AAD = b"A128GCM"
_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_TO_STANDARD = str.maketrans("-_", "+/")
_XCP_NONCE = 24
_TAG = 16
_GCM_IV = 12


@functools.lru_cache(maxsize=128)
def derive_key(secret: bytes, salt: bytes, iterations: int, length: int, digest: str) -> bytes:
    """``Plug.Crypto.KeyGenerator.generate/3``: PBKDF2 with Plug's option names, cached."""
    return PBKDF2HMAC(algorithm=DIGESTS[digest](), length=length, salt=salt, iterations=iterations).derive(
        secret
    )


def b64url_decode(text: str) -> bytes | None:
    """``Base.url_decode64(text, padding: false)``: None where Elixir returns ``:error``.

    Accepts the url-safe alphabet, unpadded or correctly padded, ignoring the
    unused trailing bits of the last character, as Elixir's decoder does.
    """
    body = text
    if len(text) % 4 == 0 and text.endswith("="):
        body = text[:-2] if text.endswith("==") else text[:-1]
    if len(body) % 4 == 1 or not _URL_SAFE.issuperset(body):
        return None
    padded = body.translate(_TO_STANDARD) + "=" * (-len(body) % 4)
    return binascii.a2b_base64(padded.encode(), strict_mode=False)


# -- signed (MessageVerifier) -----------------------------------------------------------


def sign(payload: bytes, key: bytes) -> str:
    """``MessageVerifier.sign(payload, key)``: HMAC-SHA256, as Plug.Session writes it."""
    signed = SIGNED_HEADER + "." + b64encode(payload)
    return signed + "." + b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def verify(token: str, key: bytes) -> bytes | None:
    """``MessageVerifier.verify(token, key)``: the payload, or None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] not in _HMACS:
        return None
    payload = b64url_decode(parts[1])
    signature = b64url_decode(parts[2])
    if payload is None or signature is None:
        return None
    expected = hmac.new(key, (parts[0] + "." + parts[1]).encode(), _HMACS[parts[0]]).digest()
    return payload if hmac.compare_digest(expected, signature) else None


# -- encrypted, plug_crypto 2.x (XChaCha20-Poly1305) --------------------------------------


def _sodium() -> Any:
    try:
        from nacl import bindings
    except ImportError:  # pragma: no cover - the phoenix extra is installed in development
        raise MissingDependency("pynacl", "phoenix") from None
    return bindings


def xcp_encrypt(plaintext: bytes, key: bytes) -> str:
    """``MessageEncryptor.encrypt(plaintext, key, _)`` in plug_crypto 2.x; ``key`` is 32 bytes."""
    nonce = os.urandom(_XCP_NONCE)
    sealed = _sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, _AAD, nonce, key)
    return XCP_HEADER + b64encode(nonce + sealed[-_TAG:] + sealed[:-_TAG])


def xcp_decrypt(token: str, key: bytes) -> bytes | None:
    """The plaintext of an ``XCP.`` token, or None (also for a key that is not 32 bytes,
    where plug_crypto raises)."""
    raw = b64url_decode(token[len(XCP_HEADER) :]) if token.startswith(XCP_HEADER) else None
    if raw is None or len(raw) < _XCP_NONCE + _TAG or len(key) != 32:
        return None
    sodium = _sodium()
    from nacl.exceptions import CryptoError

    nonce, tag, ciphertext = raw[:_XCP_NONCE], raw[_XCP_NONCE : _XCP_NONCE + _TAG], raw[_XCP_NONCE + _TAG :]
    try:
        plaintext: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext + tag, _AAD, nonce, key
        )
    except CryptoError:  # authentication failed
        return None
    return plaintext


# -- encrypted, plug_crypto 1.x (AES-GCM with a wrapped content key) -------------------------


def _wrap_key(key: bytes) -> bytes | None:
    """The key plug_crypto 1.x wraps the content key with: at most 32 bytes, an AES size."""
    key = key[:32]
    return key if len(key) in (16, 24, 32) else None


def a128gcm_encrypt(plaintext: bytes, key: bytes, sign_key: bytes) -> str:
    """``MessageEncryptor.encrypt(plaintext, key, sign_key)`` in plug_crypto 1.x."""
    wrap = _wrap_key(key)
    if wrap is None:
        raise ValueError("the A128GCM format needs an encryption key of 16, 24 or 32+ bytes")
    cek = os.urandom(16)
    iv = os.urandom(_GCM_IV)
    sealed = AESGCM(cek).encrypt(iv, plaintext, _AAD)
    wrap_iv = os.urandom(_GCM_IV)
    wrapped = AESGCM(wrap).encrypt(wrap_iv, cek, sign_key) + wrap_iv
    parts = (wrapped, iv, sealed[:-_TAG], sealed[-_TAG:])
    return A128GCM_HEADER + "." + ".".join(b64encode(part) for part in parts)


def a128gcm_decrypt(token: str, key: bytes, sign_key: bytes, aad: bytes = _AAD) -> bytes | None:
    """The plaintext of a five-part ``QTEyOEdDTQ.`` token, or None.

    As plug_crypto 1.x reads it: the header must decode to ``A128GCM`` and a key
    longer than 32 bytes is cut to 32 (plug_crypto 2.x raises for those).
    ``aad`` is always ``A128GCM`` for session cookies; it is a parameter so that
    plug_crypto's own test vector (made with another AAD) can check this code.
    """
    parts = token.split(".")
    if len(parts) != 5 or b64url_decode(parts[0]) != _AAD:
        return None
    wrapped, iv, ciphertext, tag = (b64url_decode(part) for part in parts[1:])
    wrap = _wrap_key(key)
    if wrapped is None or iv is None or ciphertext is None or tag is None or wrap is None:
        return None
    if len(iv) != _GCM_IV or len(tag) != _TAG or len(wrapped) not in (44, 52, 60):
        return None
    try:
        cek = AESGCM(wrap).decrypt(wrapped[-_GCM_IV:], wrapped[:-_GCM_IV], sign_key)
        return AESGCM(cek).decrypt(iv, ciphertext + tag, aad)
    except InvalidTag:
        return None
