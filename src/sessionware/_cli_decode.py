"""``python -m sessionware decode``: what a session cookie holds, checked as the app checks it."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from . import _record
from ._codec import EncryptedCodec, IdCodec, SignedCodec
from ._config import resolve_expiry
from ._keys import KeyRing, SecretInput
from .errors import ConfigurationError, InvalidCookie

__all__ = ["cookie_names", "decode", "duration", "iso"]

_PREFIXES = ("__Host-", "__Secure-")

_PHOENIX_FORMATS = {
    "SFMyNTY": "SFMyNTY (HS256)",
    "SFMzODQ": "SFMzODQ (HS384)",
    "SFM1MTI": "SFM1MTI (HS512)",
    "XCP": "XCP (XChaCha20-Poly1305)",
    "QTEyOEdDTQ": "QTEyOEdDTQ (A128GCM)",
}


def iso(seconds: int | None) -> str | None:
    """Unix seconds as an ISO 8601 date in UTC (``2025-01-31T09:30:00Z``)."""
    return None if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def duration(seconds: int) -> str:
    """``"2d 3h"``, ``"11h 0m"``, ``"4m 10s"``, ``"42s"``: the largest unit and the next."""
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if parts or seconds >= size or unit == "s":
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def cookie_names(name: str) -> list[str]:
    """The configured cookie name with and without its ``__Host-``/``__Secure-`` prefix.

    The app's keys are bound to the name it was configured with, which may or
    may not carry the prefix the browser shows: the given one is tried first.
    """
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return [name, name[len(prefix) :]]
    return [name, "__Host-" + name]


def _times(record: _record.Record, expiry_name: str, now: int) -> dict[str, Any]:
    expiry = resolve_expiry(expiry_name, owner="sessionware decode --expiry")
    deadline = expiry.deadline(record.created_at, record.touched_at)
    if not expiry.is_valid(record.created_at, record.touched_at, now):
        status = "expired" if deadline is None else f"expired {duration(max(now - deadline, 0))} ago"
    else:
        status = "valid, no expiry" if deadline is None else f"valid for {duration(deadline - now)}"
    return {
        "created_at": iso(record.created_at),
        "last_active": iso(record.touched_at),
        "authenticated_at": iso(record.auth_at),
        "expires_at": iso(deadline),
        "status": f"{status} (expiry {expiry_name})",
    }


def _server_side(
    keys: KeyRing, value: str, name: str, store: Any, expiry: str, now: int
) -> tuple[dict[str, Any], int]:
    session_id, stale = IdCodec(keys, name).decode(value)
    store_key = IdCodec.store_key(session_id)
    shown: dict[str, Any] = {"kind": "server-side id", "cookie_name": name, "store_key": store_key}
    if store is None:
        shown["stale_key"] = stale
        shown["hint"] = "pass --store URL to show the session's data"
        return shown, 0
    stored = store.load(store_key)
    if stored is None:
        shown["stale_key"] = stale
        shown["status"] = "not in the store: expired, logged out or revoked"
        return shown, 1
    head, fields = stored
    record = _record.unpack(head, b"{}")
    shown |= _times(record, expiry, now)
    shown |= {"meta": record.meta, "data": _record.load_fields(fields), "stale_key": stale}
    return shown, 0


def _own(args: argparse.Namespace, secret: SecretInput, store: Any) -> int:
    keys = KeyRing(secret, owner="sessionware decode")
    value, now = args.cookie, int(time.time())
    failure: InvalidCookie | None = None
    for name in cookie_names(args.cookie_name):  # the name given first: its error is the one shown
        try:
            if value.startswith("i1."):
                shown, status = _server_side(keys, value, name, store, args.expiry, now)
            else:
                encrypted = value.startswith("e1.")
                codec = EncryptedCodec(keys, name) if encrypted else SignedCodec(keys, name)
                plaintext, stale = codec.decode(value)
                record = _record.unpack(plaintext)
                shown = {"kind": "encrypted" if encrypted else "signed", "cookie_name": name}
                shown |= _times(record, args.expiry, now)
                data = _record.load_data(record.data_json)
                shown |= {"meta": record.meta, "data": data, "stale_key": stale}
                status = 0
        except InvalidCookie as exc:
            failure = failure or exc
            continue
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return status
    assert failure is not None
    raise failure


def _phoenix(args: argparse.Namespace, secret: SecretInput) -> int:
    """``decode --phoenix``: a Plug.Session cookie's session, as typed JSON.

    Only reads, so the options are checked as Plug reads them (any key length),
    not as the store would write.
    """
    from . import phoenix
    from ._etf import to_typed_json

    owner = "sessionware decode --phoenix"
    if args.signing_salt is None:
        raise ConfigurationError("decode --phoenix needs --signing-salt (the endpoint's :signing_salt)")
    options = phoenix._key_options(owner, args.key_iterations, args.key_length, args.key_digest)
    signing_salt = phoenix._bytes(args.signing_salt, "signing_salt", owner)
    encryption_salt = None
    if args.encryption_salt is not None:
        encryption_salt = phoenix._bytes(args.encryption_salt, "encryption_salt", owner)
    configs = [
        phoenix._config(phoenix._secret(item, owner), signing_salt, encryption_salt, *options)
        for item in ([secret] if isinstance(secret, str | bytes) else secret)
    ]
    session, index = phoenix._read(args.cookie, configs)
    form = args.cookie[:3] if args.cookie.startswith("XCP.") else args.cookie.split(".", 1)[0]
    shown = {
        "kind": "phoenix signed" if encryption_salt is None else "phoenix encrypted",
        "format": _PHOENIX_FORMATS.get(form, form),
        "session": to_typed_json(session),
        "stale_key": index != 0,
    }
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def decode(args: argparse.Namespace, secret: SecretInput, store: Any) -> int:
    """Print what the cookie ``args.cookie`` holds; 1 if its server-side record is gone."""
    if args.phoenix:
        return _phoenix(args, secret)
    return _own(args, secret, store)
