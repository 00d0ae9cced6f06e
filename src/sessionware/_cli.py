"""``python -m sessionware``: small tools for operators."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence

from . import _record
from ._codec import EncryptedCodec, IdCodec, SignedCodec
from ._keys import KeyRing
from .errors import SessionError

__all__ = ["main"]

SECRET_BYTES = 64


def _gen_secret(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


def _decode(args: argparse.Namespace) -> int:
    secret = args.secret_key_base or os.environ.get("SECRET_KEY_BASE")
    if not secret:
        print("decode needs --secret-key-base or the SECRET_KEY_BASE environment variable", file=sys.stderr)
        return 2
    keys = KeyRing(secret, owner="sessionware decode")
    value = args.cookie
    if value.startswith("i1."):
        session_id, stale = IdCodec(keys, args.cookie_name).decode(value)
        print(
            json.dumps(
                {"kind": "server-side id", "store_key": IdCodec.store_key(session_id), "stale_key": stale}
            )
        )
        return 0
    codec = (
        EncryptedCodec(keys, args.cookie_name)
        if value.startswith("e1.")
        else SignedCodec(keys, args.cookie_name)
    )
    plaintext, stale = codec.decode(value)
    record = _record.unpack(plaintext)
    print(
        json.dumps(
            {
                "kind": "encrypted" if value.startswith("e1.") else "signed",
                "created_at": record.created_at,
                "last_active": record.touched_at,
                "authenticated_at": record.auth_at,
                "meta": _record.load_meta(record.meta_json),
                "data": _record.load_data(record.data_json),
                "stale_key": stale,
            },
            indent=2,
        )
    )
    return 0


def _purge(args: argparse.Namespace) -> int:
    from .stores.sqlite import SQLiteStore

    removed = SQLiteStore(args.sqlite).purge_expired()
    print(f"removed {removed} expired session(s)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sessionware", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("gen-secret", help="print a fresh random secret_key_base")
    gen.add_argument("--bytes", type=int, default=SECRET_BYTES, help=f"random bytes (default {SECRET_BYTES})")
    gen.set_defaults(run=_gen_secret)

    decode = commands.add_parser("decode", help="verify and show a sessionware cookie value")
    decode.add_argument("cookie", help="the cookie value (without 'name=')")
    decode.add_argument("--secret-key-base", help="defaults to $SECRET_KEY_BASE")
    decode.add_argument("--cookie-name", default="session", help="the cookie's name (default 'session')")
    decode.set_defaults(run=_decode)

    purge = commands.add_parser("purge", help="delete expired sessions from a store")
    purge.add_argument("--sqlite", required=True, metavar="PATH", help="an SQLiteStore database file")
    purge.set_defaults(run=_purge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "bytes", SECRET_BYTES) < 32:
        print("--bytes must be at least 32", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except SessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
