"""python -m sessionware: tools for operators.

  gen-secret                 print a fresh secret_key_base
  decode COOKIE [--store URL]
                             verify and show a sessionware cookie value (with
                             --store, a server-side session's data too)
  decode --phoenix COOKIE --signing-salt S [--encryption-salt E]
                             show the session in a Plug (Phoenix) session cookie
  migrate --store URL        create the table (PostgreSQL, SQLite);
                             --print-sql shows PostgreSQL's SQL
  purge --store URL          delete expired sessions
  sessions list --store URL --user ID [--json]
                             a table of the user's devices: browser and OS,
                             first and last seen, how it logged in, network
  sessions revoke --store URL --user ID (--handle H | --all)

Store URLs:
  sqlite:///sessions.db      the file sessions.db in the current directory
  sqlite:////var/lib/app.db  an absolute path: four slashes (SQLAlchemy's rule)
  redis://host:6379/0, rediss://host:6380/0 (TLS), redis+cluster://host:7000
  postgresql://user@host:5432/db

Only migrate creates anything: the other commands refuse a missing database
file or table, and name it. Commands that find a user's sessions need the
app's secret_key_base (--secret-key-base, repeated for rotated secrets, or
$SECRET_KEY_BASE) and its cookie name (--cookie-name).

Exit status: 0 done; 1 nothing found (no such session to revoke, or no record
for a decoded session ID); 2 an error, explained in one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._cli_decode import cookie_names, decode
from ._codec import IdCodec
from ._cookies import CookieAttributes
from ._engine import Engine
from ._expiry import PRESETS, Expiry
from ._keys import SecretInput
from ._registry import SessionInfo, UserSessions
from .errors import ConfigurationError, SessionError
from .stores import from_url
from .typing import Purgeable

__all__ = ["main"]

SECRET_BYTES = 64
#: Exit statuses.
DONE, NOT_FOUND, FAILED = 0, 1, 2
_DEFAULT_TABLE = "sessionware_sessions"


class CommandError(Exception):
    """A failure the command has already put into words: ``error: <message>``, exit 2."""


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
        raise CommandError("--bytes must be at least 32")
    print(secrets.token_urlsafe(args.bytes))
    return DONE


def _store(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The store named by --store, with the --table or --prefix the app uses.

    Without ``create`` nothing is made: a missing SQLite file or table is an error.
    """
    options: dict[str, Any] = {}
    scheme = args.store.partition(":")[0]
    if scheme == "sqlite":
        options["create"] = create
    if getattr(args, "table", None) and scheme in ("postgresql", "postgres", "sqlite"):
        options["table"] = args.table
    if getattr(args, "prefix", None) and scheme.startswith("redis"):
        options["prefix"] = args.prefix
    try:
        return from_url(args.store, **options)
    except SessionError:
        raise
    except ValueError as exc:  # what a client library's URL parser says (a port out of range, ...)
        raise CommandError(f"the store URL {_masked(args.store)!r} is not valid: {exc}") from exc


def _masked(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "--store"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"))


def _reachable(store: Any) -> None:
    """Ask the store for a session that does not exist: it fails if the store cannot answer."""
    store.load(IdCodec.store_key(IdCodec.new_id()))


def _decode(args: argparse.Namespace) -> int:
    secret = _secret(args)
    store = _store(args) if args.store else None
    return decode(args, secret, store)


def _migrate(args: argparse.Namespace) -> int:
    from .stores.postgres import migration_sql

    if args.print_sql:
        print(migration_sql(args.table))
        return DONE
    if not args.store:
        raise ConfigurationError("migrate needs --store postgresql://... or sqlite:///... (or --print-sql)")
    store = _store(args, create=True)  # SQLiteStore creates its file and table as it opens
    if hasattr(store, "migrate"):
        store.migrate()
        store.close()
    elif not args.store.startswith("sqlite:"):
        _reachable(store)
        print(f"{store!r} needs no migration")
        return DONE
    print(f"table {store.table!r} is ready in {store!r}")
    return DONE


def _purge(args: argparse.Namespace) -> int:
    store = _store(args)
    if not isinstance(store, Purgeable):
        _reachable(store)
        print(f"{store!r} expires sessions by itself; nothing to purge")
        return DONE
    print(f"removed {store.purge_expired()} expired session(s)")
    return DONE


def _engine(args: argparse.Namespace, store: Any, cookie_name: str) -> Engine:
    return Engine(
        secret_key_base=_secret(args),
        store=store,
        cookie=CookieAttributes(cookie_name),
        expiry=Expiry(idle_timeout=None, absolute_timeout=None, allow_unlimited=True),
        owner="sessionware sessions",
    )


def _unverified(args: argparse.Namespace, registry: UserSessions) -> None:
    """Fail if the store holds sessions of ``--user`` that this secret and cookie name cannot see.

    A user's sessions are filed under a key derived from the secret and the
    cookie name: with another secret (or name) they are not found, and the
    command would answer "no sessions" while they stay live.
    """
    store: Any = registry.store
    engine, user = registry.engine, args.user
    finds: Callable[[str], list[str]] | None = getattr(store, "registry_keys", None)
    if finds is None:
        return
    own = set(engine.user_keys(user))
    foreign = [key for key in finds(str(user)) if key not in own]
    count = sum(len(store.user_sessions(key)) for key in foreign)
    if not count:
        return
    hint = "pass every secret the app has used (--secret-key-base, repeated) and its cookie name"
    for name in cookie_names(args.cookie_name)[1:]:
        if set(foreign) & set(_engine(args, store, name).user_keys(user)):
            hint = f"they verify with --cookie-name {name}"
    raise CommandError(
        f"{count} session(s) for user {user!r} could not be verified with this secret key base / "
        f"cookie name {args.cookie_name!r}: {hint}"
    )


def _registry(args: argparse.Namespace) -> UserSessions:
    store = _store(args)
    return UserSessions(_engine(args, store, args.cookie_name))


def relative_time(timestamp: int, now: int) -> str:
    """``timestamp`` as people say it: "just now", "5 minutes ago", "in 3 hours"."""
    seconds = abs(timestamp - now)
    if seconds < 60:
        return "just now" if timestamp <= now else "in less than a minute"
    count, unit = next((seconds // size, unit) for unit, size in _UNITS if seconds >= size)
    amount = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{amount} ago" if timestamp < now else f"in {amount}"


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))
_COLUMNS = ("HANDLE", "DEVICE", "FIRST SEEN", "LAST SEEN", "HOW", "NETWORK", "DBSC")


def _row(info: SessionInfo, now: int) -> tuple[str, ...]:
    device = info.device.label if info.device is not None else "Unknown device"
    return (
        info.handle,
        device,
        relative_time(info.first_seen, now),
        relative_time(info.last_seen, now),
        info.how,
        info.ip or "-",  # the network (/24, /48) unless the app records full addresses
        "bound" if info.device_bound else "-",
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _as_json(info: SessionInfo) -> dict[str, Any]:
    shown = dataclasses.asdict(info)
    if info.device is not None:
        shown["device"]["label"] = info.device.label
    shown["last_seen"] = info.last_seen
    return shown


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    infos = registry.list(args.user)
    if args.json:
        print(json.dumps([_as_json(info) for info in infos], indent=2))
    elif infos:
        now = int(time.time())
        print(_table([_COLUMNS, *(_row(info, now) for info in infos)]))
    _unverified(args, registry)
    if not infos and not args.json:
        print(f"no live sessions for user {args.user!r}")
    return DONE


def _revoke(args: argparse.Namespace) -> int:
    registry = _registry(args)
    if args.all:
        print(f"revoked {registry.revoke_all(args.user)} session(s)")
        _unverified(args, registry)
        return DONE
    if registry.revoke(args.user, args.handle):
        print("revoked 1 session")
        return DONE
    _unverified(args, registry)
    print(f"no session {args.handle!r} for user {args.user!r}", file=sys.stderr)
    return NOT_FOUND


_URLS = (
    "sqlite:///relative.db (from the current directory), sqlite:////absolute.db, "
    "redis://host:6379/0, rediss://..., redis+cluster://host:7000, postgresql://user@host/db"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sessionware",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show sessionware's log lines (warnings, debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_secret(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--secret-key-base",
            action="append",
            help="the app's secret (repeat for rotated ones); default $SECRET_KEY_BASE",
        )
        command.add_argument(
            "--cookie-name",
            default="session",
            help="the app's cookie name, with or without its __Host- prefix (default 'session')",
        )

    def with_store(
        command: argparse.ArgumentParser, required: bool = True, text: str = "the store's URL"
    ) -> None:
        command.add_argument("--store", required=required, help=f"{text}: {_URLS}")
        command.add_argument("--table", help="the table (PostgreSQL, SQLite) if not the default")
        command.add_argument("--prefix", help="the key prefix (Redis) if not the default")

    gen = commands.add_parser("gen-secret", help="print a fresh random secret_key_base")
    gen.add_argument("--bytes", type=int, default=SECRET_BYTES, help=f"random bytes (default {SECRET_BYTES})")
    gen.set_defaults(run=_gen_secret)

    decoding = commands.add_parser(
        "decode",
        help="verify and show a sessionware (or, with --phoenix, a Plug) cookie value",
        description="Verify and show a session cookie's value, as JSON, with its times as ISO dates in "
        "UTC and whether it is still valid under the app's expiry. A server-side session's cookie "
        "holds only its ID: with --store, its data is loaded from the store (nothing is changed). "
        "With --phoenix, a Plug.Session cookie, given the Phoenix endpoint's secret_key_base and "
        'session options; its session is printed as typed JSON ({"atom": ...}, {"bytes_b64": ...}, '
        '{"tuple": [...]}, ...).',
    )
    decoding.add_argument("cookie", help="the cookie value (without 'name=')")
    with_secret(decoding)
    with_store(decoding, required=False, text="where a server-side session lives")
    decoding.add_argument(
        "--expiry",
        default="aal2",
        choices=sorted(PRESETS),
        help="the app's expiry preset, to tell whether the session is still valid (default aal2, "
        "the middleware's default)",
    )
    phoenix = decoding.add_argument_group("Plug (Phoenix) cookies")
    phoenix.add_argument("--phoenix", action="store_true", help="the cookie is a Plug.Session cookie")
    phoenix.add_argument("--signing-salt", help="the endpoint's :signing_salt (required with --phoenix)")
    phoenix.add_argument("--encryption-salt", help="the endpoint's :encryption_salt, if it encrypts")
    phoenix.add_argument("--key-iterations", type=int, default=1000, help=":key_iterations (default 1000)")
    phoenix.add_argument("--key-length", type=int, default=32, help=":key_length (default 32)")
    phoenix.add_argument("--key-digest", default="sha256", help=":key_digest (default sha256)")
    decoding.set_defaults(run=_decode)

    migrate = commands.add_parser(
        "migrate",
        help="create the sessions table (PostgreSQL, SQLite)",
        description="Create the sessions table (and, for SQLite, the database file) if missing; "
        "running it again changes nothing. Redis needs no migration.",
    )
    migrate.add_argument(
        "--store", help="postgresql://user@host:5432/db, sqlite:///relative.db or sqlite:////absolute.db"
    )
    migrate.add_argument("--table", default=_DEFAULT_TABLE, help=f"table name (default {_DEFAULT_TABLE})")
    migrate.add_argument(
        "--print-sql", action="store_true", help="print PostgreSQL's SQL instead of running it"
    )
    migrate.set_defaults(run=_migrate)

    purge = commands.add_parser("purge", help="delete expired sessions from a store")
    with_store(purge)
    purge.set_defaults(run=_purge)

    sessions = commands.add_parser("sessions", help="list or revoke a user's sessions")
    actions = sessions.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list",
        help="list a user's live sessions (a table of devices)",
        description="List a user's live sessions, most recently active first, as a table: the "
        "handle (for 'sessions revoke --handle'), the device (browser and major version, OS, and "
        "mobile/tablet/bot), when it was first and last seen (relative times; last seen moves at "
        "most once per touch_interval), how it logged in (password, remember, or the app's word), "
        "its network (the IP's /24 or /48 if the app records it, record_ip=True) and whether it "
        "is device-bound (DBSC). --json prints every field, times as unix seconds.",
    )
    revoke = actions.add_parser("revoke", help="revoke one or all of a user's sessions")
    for command in (listing, revoke):
        with_store(command)
        command.add_argument("--user", required=True, help="the user ID the app logs users in with")
        with_secret(command)
    listing.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of the table: every field, times as unix seconds, the raw user agent",
    )
    listing.set_defaults(run=_list)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--handle", help="the handle that 'sessions list' shows")
    which.add_argument("--all", action="store_true", help="every session of the user")
    revoke.set_defaults(run=_revoke)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The library's log lines repeat what the error says (a store that cannot be
    # reached warns, then raises): shown only with --verbose.
    logger = logging.getLogger("sessionware")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sessionware: %(levelname)s: %(message)s"))
    saved = logger.handlers, logger.level, logger.propagate
    logger.handlers = [handler] if args.verbose else [logging.NullHandler()]
    logger.setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    logger.propagate = False
    try:
        return int(args.run(args))
    except (SessionError, CommandError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an operator's tool: one line, never a traceback
        print(f"error: {type(exc).__name__}: {_one_line(str(exc))}", file=sys.stderr)
    finally:
        logger.handlers, logger.level, logger.propagate = saved
    return FAILED
