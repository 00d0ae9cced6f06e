"""The SQLite store: server-side sessions with nothing to install."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError, StoreError, StoreUnavailable

logger = logging.getLogger("sessionware")

__all__ = ["SQLiteStore"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Connections a forked child inherited: never used, never closed (see _connection).
_INHERITED: list[sqlite3.Connection] = []


class SQLiteStore:
    """Keep sessions in an SQLite database file, with the standard library's ``sqlite3``.

    The embedded default for server-side sessions: no server to run, sessions
    survive restarts, and several worker processes on one machine can share
    the file safely (write-ahead logging, row-level compare-and-set, a busy
    timeout instead of "database is locked" errors). Under ASGI every call
    runs on a small thread pool, so the event loop never waits on the disk.
    For several machines use a shared store (Redis or PostgreSQL). A store
    made before ``fork()`` (a pre-forking server, ``multiprocessing``) is safe
    to use in the child: it opens connections of its own there.

    Records carry their expiry time; expired rows are never returned and are
    deleted at most every ``purge_interval`` seconds by a write, or on demand
    with :meth:`purge_expired` (``python -m sessionware purge``).

    Options:
        path: The database file; created if missing. Defaults to
            ``"sessions.db"``. ``":memory:"`` is refused: each thread would
            see its own empty database (use :class:`MemoryStore`).
        table: Table name. Defaults to ``"sessionware_sessions"``.
        timeout: Seconds to wait for a lock held by another process or thread
            before failing with :class:`~sessionware.StoreUnavailable`.
            Defaults to 5.
        purge_interval: Seconds between opportunistic purges of expired rows.
            Defaults to 300; ``0`` disables them.
        clock: A function returning unix time in seconds, used for TTLs only.
            Defaults to :func:`time.time`; tests pass a fake.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=SQLiteStore("sessions.db"))
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "sessions.db",
        *,
        table: str = "sessionware_sessions",
        timeout: float = 5.0,
        purge_interval: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path = os.fspath(path)
        if path == ":memory:" or path.startswith("file::memory:"):
            raise ConfigurationError(
                "SQLiteStore expects a database file, not ':memory:' (every thread would get its "
                "own empty database); use MemoryStore for in-process sessions"
            )
        if _IDENTIFIER.fullmatch(table) is None:
            raise ConfigurationError(f"SQLiteStore expects table to be a plain SQL identifier, got {table!r}")
        if not timeout > 0:
            raise ConfigurationError(f"SQLiteStore expects timeout to be positive seconds, got {timeout!r}")
        self.path = path
        self.table = table
        self._timeout = timeout
        self._clock = clock
        self._purge_interval = purge_interval
        self._next_purge = int((clock() + purge_interval) * 1000)
        self._local = threading.local()
        self._sql_load = f"SELECT data, version FROM {table} WHERE key = ? AND expires_at > ?"
        self._sql_insert = (
            f"INSERT OR REPLACE INTO {table} (key, data, version, user_key, expires_at) "
            "VALUES (?, ?, 1, ?, ?)"
        )
        self._sql_update = (
            f"UPDATE {table} SET data = ?, version = version + 1, user_key = ?, expires_at = ? "
            "WHERE key = ? AND version = ? AND expires_at > ?"
        )
        # Deletes rows whether or not they expired; reports which were still live.
        self._sql_delete = f"DELETE FROM {table} WHERE key = ? RETURNING expires_at > ?"
        self._sql_user = f"SELECT key, data FROM {table} WHERE user_key = ? AND expires_at > ?"
        self._sql_delete_user = (
            f"DELETE FROM {table} WHERE user_key = ? AND key IS NOT ? RETURNING expires_at > ?"
        )
        self._sql_purge = f"DELETE FROM {table} WHERE expires_at <= ?"
        try:
            self._migrate()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"SQLiteStore could not open or create {path!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    def _migrate(self) -> None:
        # On a connection of its own, closed after: the constructing process (a
        # forking server's master, say) then holds no connection its workers inherit.
        with contextlib.closing(self._open()) as connection:
            self._create_table(connection)

    def _create_table(self, connection: sqlite3.Connection) -> None:
        table = self.table
        connection.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {table} (
                key TEXT PRIMARY KEY,
                data BLOB NOT NULL,
                version INTEGER NOT NULL,
                user_key TEXT,
                expires_at INTEGER NOT NULL  -- unix time in milliseconds
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
            """
        )
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if "user_key" not in columns:  # a table made by sessionware 0.1.0 before the registry
            connection.execute(f"ALTER TABLE {table} ADD COLUMN user_key TEXT")
        connection.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_user_key ON {table} (user_key) WHERE user_key IS NOT NULL"
        )

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened by this process.

        SQLite connections must not cross ``fork()``: a child (a forking server's
        worker, ``multiprocessing`` with the fork start method) that inherited
        one opens its own instead. The inherited one is left as it is, never
        used nor closed -- closing it could checkpoint or unlock the parent's
        database -- and kept referenced so that garbage collection does not
        close it either.

        SQLite's file locks belong to the process, and a child inherits the
        parent's: fork while no other thread of the parent is inside a write
        (as forking servers do, before serving), or the child may find the
        database locked.
        """
        pid = os.getpid()
        opened: tuple[int, sqlite3.Connection] | None = getattr(self._local, "connection", None)
        if opened is not None:
            if opened[0] == pid:
                return opened[1]
            _INHERITED.append(opened[1])
        connection = self._open()
        self._local.connection = (pid, connection)
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _execute(self, sql: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._connection().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLiteStore({self.path!r}): {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLiteStore({self.path!r}): {exc}") from exc

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def load(self, key: str) -> tuple[bytes, int] | None:
        row = self._execute(self._sql_load, (key, self._now_ms())).fetchone()
        return None if row is None else (bytes(row[0]), row[1])

    def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        now = self._now_ms()
        expires = now + ttl * 1000
        if version is None:
            self._execute(self._sql_insert, (key, data, user, expires))
            written = True
        else:
            written = self._execute(self._sql_update, (data, user, expires, key, version, now)).rowcount == 1
        if self._purge_interval and now >= self._next_purge:
            self._next_purge = now + int(self._purge_interval * 1000)
            try:
                self._execute(self._sql_purge, (now,))
            except StoreError as exc:  # housekeeping must never fail a save that happened
                logger.warning("SQLiteStore could not purge expired sessions (will retry): %s", exc)
        return written

    def delete(self, key: str) -> bool:
        rows = self._execute(
            self._sql_delete, (key, self._now_ms())
        ).fetchall()  # fetchall ends the statement
        return bool(rows and rows[0][0])

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        rows = self._execute(self._sql_user, (user, self._now_ms())).fetchall()
        return [(key, bytes(data)) for key, data in rows]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        rows = self._execute(self._sql_delete_user, (user, keep, self._now_ms())).fetchall()
        return sum(1 for (live,) in rows if live)

    def purge_expired(self) -> int:
        return self._execute(self._sql_purge, (self._now_ms(),)).rowcount
