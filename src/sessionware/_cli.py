"""``python -m sessionware``: tools for operators.

    gen-secret                 print a fresh secret_key_base
    decode COOKIE              verify and show a sessionware cookie value
    decode --phoenix COOKIE --signing-salt S [--encryption-salt E]
                               show the session in a Plug (Phoenix) session cookie
    migrate --store URL        create the PostgreSQL table (--print-sql shows the SQL)
    purge --store URL          delete expired sessions
    sessions list --store URL --user ID
    sessions revoke --store URL --user ID (--handle H | --all)

Stores are given by URL: sqlite:///path.db, redis://host:6379/0,
rediss://..., redis+cluster://host:7000, postgresql://user@host/db.
Commands that find a user's sessions need the app's secret_key_base
(--secret-key-base, repeatable for rotated secrets, or $SECRET_KEY_BASE)
and its cookie name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import _record
from ._codec import EncryptedCodec, IdCodec, SignedCodec
from ._cookies import CookieAttributes
from ._engine import Engine
from ._expiry import Expiry
from ._keys import KeyRing, SecretInput
from ._registry import UserSessions
from .errors import ConfigurationError, SessionError
from .stores import from_url
from .typing import Purgeable

__all__ = ["main"]

SECRET_BYTES = 64


def _secret(args: argparse.Namespace) -> SecretInput:
    given: list[str] = args.secret_key_base or []
    if given:
        return given[0] if len(given) == 1 else given
    if os.environ.get("SECRET_KEY_BASE"):
        return os.environ["SECRET_KEY_BASE"]
    raise ConfigurationError(
        "this command needs --secret-key-base or the SECRET_KEY_BASE environment variable"
    )


def _gen_secret(args: argparse.Namespace) -> int:
    if args.bytes < 32:
        print("--bytes must be at least 32", file=sys.stderr)
        return 2
    print(secrets.token_urlsafe(args.bytes))
    return 0


_PHOENIX_FORMATS = {
    "SFMyNTY": "SFMyNTY (HS256)",
    "SFMzODQ": "SFMzODQ (HS384)",
    "SFM1MTI": "SFM1MTI (HS512)",
    "XCP": "XCP (XChaCha20-Poly1305)",
    "QTEyOEdDTQ": "QTEyOEdDTQ (A128GCM)",
}


def _decode_phoenix(args: argparse.Namespace) -> int:
    """``decode --phoenix``: a Plug.Session cookie's session, as typed JSON.

    Only reads, so the options are checked as Plug reads them (any key length),
    not as the store would write.
    """
    from . import phoenix
    from ._etf import to_typed_json

    owner = "sessionware decode --phoenix"
    if args.signing_salt is None:
        raise ConfigurationError("decode --phoenix needs --signing-salt (the endpoint's :signing_salt)")
    secret = _secret(args)
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


def _decode(args: argparse.Namespace) -> int:
    if args.phoenix:
        return _decode_phoenix(args)
    keys = KeyRing(_secret(args), owner="sessionware decode")
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
    shown = {
        "kind": "encrypted" if value.startswith("e1.") else "signed",
        "created_at": record.created_at,
        "last_active": record.touched_at,
        "authenticated_at": record.auth_at,
        "meta": record.meta,
        "data": _record.load_data(record.data_json),
        "stale_key": stale,
    }
    print(json.dumps(shown, indent=2))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from .stores.postgres import PostgresStore, migration_sql

    if args.print_sql:
        print(migration_sql(args.table))
        return 0
    if not args.store:
        raise ConfigurationError("migrate needs --store postgresql://... (or --print-sql)")
    store = from_url(args.store, **({"table": args.table} if args.store.startswith("postgres") else {}))
    if not isinstance(store, PostgresStore):
        print(f"{store!r} needs no migration: it creates what it needs itself")
        return 0
    store.migrate()
    store.close()
    print(f"table {args.table!r} is ready")
    return 0


def _store(args: argparse.Namespace) -> Any:
    """The store named by --store, with the --table or --prefix the app uses."""
    options: dict[str, Any] = {}
    scheme = args.store.partition(":")[0]
    if args.table and scheme in ("postgresql", "postgres", "sqlite"):
        options["table"] = args.table
    if args.prefix and scheme.startswith("redis"):
        options["prefix"] = args.prefix
    return from_url(args.store, **options)


def _purge(args: argparse.Namespace) -> int:
    store = _store(args)
    if not isinstance(store, Purgeable):
        print(f"{store!r} expires sessions by itself; nothing to purge")
        return 0
    print(f"removed {store.purge_expired()} expired session(s)")
    return 0


def _registry(args: argparse.Namespace) -> UserSessions:
    store = _store(args)
    engine = Engine(
        secret_key_base=_secret(args),
        store=store,
        cookie=CookieAttributes(args.cookie_name),
        expiry=Expiry(idle_timeout=None, absolute_timeout=None, allow_unlimited=True),
        owner="sessionware sessions",
    )
    return UserSessions(engine)


def _list(args: argparse.Namespace) -> int:
    infos = _registry(args).list(args.user)
    if args.json:
        print(json.dumps([dataclasses.asdict(info) for info in infos], indent=2))
        return 0
    if not infos:
        print(f"no live sessions for user {args.user!r}")
    for info in infos:
        logged_in = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.logged_in_at))
        active = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.last_active))
        print(f"{info.handle}  logged in {logged_in} UTC, active {active} UTC  {info.user_agent or '-'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.all:
        print(f"revoked {registry.revoke_all(args.user)} session(s)")
        return 0
    if registry.revoke(args.user, args.handle):
        print("revoked 1 session")
        return 0
    print(f"no session {args.handle!r} for user {args.user!r}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sessionware",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_secret(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--secret-key-base",
            action="append",
            help="the app's secret (repeat for rotated ones); $SECRET_KEY_BASE",
        )
        command.add_argument(
            "--cookie-name", default="session", help="the app's cookie name (default 'session')"
        )

    gen = commands.add_parser("gen-secret", help="print a fresh random secret_key_base")
    gen.add_argument("--bytes", type=int, default=SECRET_BYTES, help=f"random bytes (default {SECRET_BYTES})")
    gen.set_defaults(run=_gen_secret)

    decode = commands.add_parser(
        "decode",
        help="verify and show a sessionware (or, with --phoenix, a Plug) cookie value",
        description="Verify and show a session cookie's value. With --phoenix, a Plug.Session "
        "cookie, given the Phoenix endpoint's secret_key_base and session options; its session "
        'is printed as typed JSON ({"atom": ...}, {"bytes_b64": ...}, {"tuple": [...]}, ...).',
    )
    decode.add_argument("cookie", help="the cookie value (without 'name=')")
    with_secret(decode)
    phoenix = decode.add_argument_group("Plug (Phoenix) cookies")
    phoenix.add_argument("--phoenix", action="store_true", help="the cookie is a Plug.Session cookie")
    phoenix.add_argument("--signing-salt", help="the endpoint's :signing_salt (required with --phoenix)")
    phoenix.add_argument("--encryption-salt", help="the endpoint's :encryption_salt, if it encrypts")
    phoenix.add_argument("--key-iterations", type=int, default=1000, help=":key_iterations (default 1000)")
    phoenix.add_argument("--key-length", type=int, default=32, help=":key_length (default 32)")
    phoenix.add_argument("--key-digest", default="sha256", help=":key_digest (default sha256)")
    decode.set_defaults(run=_decode)

    migrate = commands.add_parser("migrate", help="create the PostgreSQL sessions table")
    migrate.add_argument("--store", help="postgresql://user@host:5432/db")
    migrate.add_argument(
        "--table", default="sessionware_sessions", help="table name (default sessionware_sessions)"
    )
    migrate.add_argument("--print-sql", action="store_true", help="print the SQL instead of running it")
    migrate.set_defaults(run=_migrate)

    def with_store(command: argparse.ArgumentParser) -> None:
        command.add_argument("--store", required=True, help="the store's URL")
        command.add_argument("--table", help="the table (PostgreSQL, SQLite) if not the default")
        command.add_argument("--prefix", help="the key prefix (Redis) if not the default")

    purge = commands.add_parser("purge", help="delete expired sessions from a store")
    with_store(purge)
    purge.set_defaults(run=_purge)

    sessions = commands.add_parser("sessions", help="list or revoke a user's sessions")
    actions = sessions.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list a user's live sessions")
    revoke = actions.add_parser("revoke", help="revoke one or all of a user's sessions")
    for command in (listing, revoke):
        with_store(command)
        command.add_argument("--user", required=True, help="the user ID the app logs users in with")
        with_secret(command)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--handle", help="the handle `sessions list` shows")
    which.add_argument("--all", action="store_true", help="every session of the user")
    revoke.set_defaults(run=_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: Any = args.run(args)
    except SessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return int(result)
