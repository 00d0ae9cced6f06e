"""DBSC proofs: the ``dbsc+jwt`` a browser signs, parsed strictly and verified with ``cryptography``.

A proof is a compact JWS: ``base64url(header) . base64url(payload) .
base64url(signature)``. The header is ``{"alg": "ES256"|"RS256", "typ":
"dbsc+jwt", "jwk": {...}}`` (``jwk`` at registration only); the payload is
``{"jti": <challenge>, "authorization"?: <text>}``, other claims ignored.
ES256 signatures are the raw 64-byte ``r || s`` of JWS, turned into DER for
``cryptography`` with ``encode_dss_signature``; RS256 is PKCS#1 v1.5 with
SHA-256. No algorithm outside :data:`ALGORITHMS` is ever accepted -- ``none``
least of all -- and the algorithm at refresh is the one stored at
registration, never the one a header names.

Everything here raises :class:`ProofRefused` with a short reason (for the log
line) on bad input, and nothing else.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ._codec import b64decode
from .errors import InvalidCookie

__all__ = [
    "ALGORITHMS",
    "MAX_JWT",
    "TYP",
    "Proof",
    "ProofRefused",
    "PublicKey",
    "parse_proof",
    "public_key",
    "verify",
]

#: What a proof may be signed with. ``none`` is never one of them.
ALGORITHMS = ("ES256", "RS256")
TYP = "dbsc+jwt"
#: The longest proof read (an RS256 header with a 4096-bit key is about 1 KB).
MAX_JWT = 8192
#: The longest challenge (``jti``) or ``authorization`` claim read.
MAX_CLAIM = 512
_RSA_MIN_BITS = 2048
_RSA_MAX_BITS = 8192

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class ProofRefused(Exception):
    """A proof that does not parse or verify; ``reason`` says why (never the proof itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Proof(NamedTuple):
    """A parsed (not yet verified) proof."""

    alg: str
    jwk: dict[str, Any] | None  #: the header's key, as sent (registration only)
    jti: str
    authorization: str | None
    signed: bytes  #: the signing input: ``header.payload`` as sent
    signature: bytes


def _b64(part: str, what: str) -> bytes:
    try:
        return b64decode(part)
    except InvalidCookie:
        raise ProofRefused(f"{what} is not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProofRefused(f"{what} is not JSON") from None
    if type(value) is not dict:
        raise ProofRefused(f"{what} is not a JSON object")
    return value


def parse_proof(token: str) -> Proof:
    """Split and decode a proof, checking its shape, ``typ`` and ``alg`` (not its signature)."""
    if len(token) > MAX_JWT:
        raise ProofRefused("proof too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise ProofRefused("proof is not a compact JWS")
    header = _json_object(_b64(parts[0], "proof header"), "proof header")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        # "none", "HS256", anything else: never accepted, whatever follows.
        raise ProofRefused(f"algorithm {str(alg)[:16]!r} is not accepted")
    if header.get("typ") != TYP:
        raise ProofRefused("typ is not dbsc+jwt")
    if "crit" in header:
        raise ProofRefused("critical header parameters are not understood")
    jwk = header.get("jwk")
    if jwk is not None and type(jwk) is not dict:
        raise ProofRefused("jwk is not an object")
    payload = _json_object(_b64(parts[1], "proof payload"), "proof payload")
    jti = payload.get("jti")
    if type(jti) is not str or not 0 < len(jti) <= MAX_CLAIM:
        raise ProofRefused("jti is missing or not a short string")
    authorization = payload.get("authorization")
    if authorization is not None and (type(authorization) is not str or len(authorization) > MAX_CLAIM):
        raise ProofRefused("authorization is not a short string")
    signature = _b64(parts[2], "signature")
    if not signature:
        raise ProofRefused("proof is unsigned")
    signed = (parts[0] + "." + parts[1]).encode("ascii")
    return Proof(alg, jwk, jti, authorization, signed, signature)


def _coordinate(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if type(value) is not str:
        raise ProofRefused(f"jwk {name} is missing")
    raw = _b64(value, f"jwk {name}")
    if len(raw) != 32:
        raise ProofRefused(f"jwk {name} is not 32 bytes")
    return int.from_bytes(raw, "big")


def public_key(alg: str, jwk: object) -> tuple[PublicKey, dict[str, str]]:
    """The key a JWK holds, for ``alg``, and the JWK reduced to its public members (to store)."""
    if type(jwk) is not dict:
        raise ProofRefused("no jwk")
    kty = jwk.get("kty")
    if alg == "ES256":
        if kty != "EC" or jwk.get("crv") != "P-256":
            raise ProofRefused("ES256 needs a P-256 EC key")
        x, y = _coordinate(jwk, "x"), _coordinate(jwk, "y")
        try:
            key: PublicKey = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise ProofRefused("jwk is not a point on P-256") from None
        return key, {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    if alg == "RS256":
        if kty != "RSA" or type(jwk.get("n")) is not str or type(jwk.get("e")) is not str:
            raise ProofRefused("RS256 needs an RSA key")
        n_raw, e_raw = _b64(jwk["n"], "jwk n"), _b64(jwk["e"], "jwk e")
        if not n_raw or not e_raw or n_raw[0] == 0 or e_raw[0] == 0 or len(e_raw) > 8:
            raise ProofRefused("jwk n or e is not minimal")
        n, e = int.from_bytes(n_raw, "big"), int.from_bytes(e_raw, "big")
        if not _RSA_MIN_BITS <= n.bit_length() <= _RSA_MAX_BITS or e < 3 or e % 2 == 0:
            raise ProofRefused("RSA key size or exponent is not accepted")
        try:
            key = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise ProofRefused("jwk is not an RSA key") from None
        return key, {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    raise ProofRefused("algorithm is not accepted")


def verify(proof: Proof, alg: str, key: PublicKey) -> None:
    """Check ``proof``'s signature under ``key`` with ``alg`` (the stored algorithm, not the header's)."""
    if proof.alg != alg:
        raise ProofRefused("algorithm differs from the registered key's")
    try:
        if alg == "ES256":
            assert isinstance(key, ec.EllipticCurvePublicKey)
            if len(proof.signature) != 64:
                raise ProofRefused("ES256 signature is not 64 bytes")
            r = int.from_bytes(proof.signature[:32], "big")
            s = int.from_bytes(proof.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), proof.signed, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(proof.signature, proof.signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise ProofRefused("bad signature") from None
