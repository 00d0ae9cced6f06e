"""The SQLite store: server-side sessions with nothing to install."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .._arguments import CheckedArguments
from .._record import dump_text, load_object
from .._steps import WouldBlock
from ..errors import ConfigurationError, StoreBusy, StoreError, StoreUnavailable
from ..typing import Change, StoredRecord

logger = logging.getLogger("sessionware")

__all__ = ["SQLiteStore"]

T = TypeVar("T")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Connections a forked child inherited: never used, never closed (see _Connections).
_INHERITED: list[sqlite3.Connection] = []


class _Process:
    """This process's ID, kept up to date across fork() (os.getpid() is a system call per ask)."""

    pid = os.getpid()

    @classmethod
    def forked(cls) -> None:
        cls.pid = os.getpid()


_process = _Process
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Process.forked)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
#: Writes made on the event loop between two checkpoints of the write-ahead log.
_CHECKPOINT_EVERY = 1000
#: Expired rows deleted per statement by a purge.
_PURGE_BATCH = 500


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # pragma: no cover - Python < 3.11
        return "locked" in str(exc) or "busy" in str(exc)
    return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


class SQLiteStore(CheckedArguments):
    """Keep sessions in an SQLite database file, with the standard library's ``sqlite3``.

    The embedded default for server-side sessions: no server to run, sessions
    survive restarts, and several worker processes on one machine share the
    file safely. Every write is one SQL statement, applied atomically to the
    row as it is (the session's keys are the members of a JSON object that
    ``json_patch`` changes in place), so concurrent requests that change
    different keys all keep their change, and nothing is ever retried.

    Under ASGI (:meth:`asyncio`) calls run inline on the event loop, where a
    read or a write costs microseconds (write-ahead logging,
    ``synchronous=NORMAL``: a commit writes to the log without waiting for
    the disk); only when the database is locked by another writer -- another
    worker process, or a thread -- does the call move to a small thread pool
    and wait there (up to ``timeout``), so the event loop never waits on a
    lock. The log is checkpointed on that pool too, never on the loop. WSGI
    apps and the CLI call the synchronous methods. For several machines use a
    shared store (Redis or PostgreSQL). A store made before ``fork()`` (a
    pre-forking server, ``multiprocessing``) is safe to use in the child: it
    opens connections of its own there.

    Records carry their expiry time; expired rows are never returned and are
    deleted at most every ``purge_interval`` seconds by a write, or on demand
    with :meth:`purge_expired` (``python -m sessionware purge``).

    Options:
        path: The database file; created if missing. Defaults to
            ``"sessions.db"``. ``":memory:"`` is refused: each thread would
            see its own empty database (use :class:`MemoryStore`).
        table: Table name. Defaults to ``"sessionware_sessions"``.
        timeout: Seconds to wait for a lock held by another process or thread
            before failing with :class:`~sessionware.StoreBusy`. Defaults to 5.
        purge_interval: Seconds between opportunistic purges of expired rows.
            Defaults to 300; ``0`` disables them.
        clock: A function returning unix time in seconds, used for TTLs only.
            Defaults to :func:`time.time`; tests pass a fake.
        create: Create the file and the table if they are missing. Defaults
            to ``True``. With ``False`` (the command-line tools that only read
            or delete) a missing file or table is a
            :class:`~sessionware.ConfigurationError` that names it.

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
        create: bool = True,
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
        if not create and not os.path.isfile(path):
            raise ConfigurationError(
                f"SQLiteStore: there is no database file {os.path.abspath(path)!r}; check the path, "
                f"or create it with `{self._migrate_command()}`"
            )
        self._timeout = timeout
        self._clock = clock
        self._purge_interval = purge_interval
        self._next_purge = int((clock() + purge_interval) * 1000)
        self._waiting = _Connections(self._open)  # wait for locks up to the timeout
        self._sql_load = f"SELECT head, data FROM {table} WHERE key = ? AND expires_at > ?"
        self._sql_create = (
            f"INSERT OR REPLACE INTO {table} (key, head, data, user_key, expires_at) VALUES (?, ?, ?, ?, ?)"
        )
        # An update sets user_key only when it changes: SQLite rewrites an index entry
        # whenever its column is assigned, even to the value it had.
        self._sql_update = (
            f"UPDATE {table} SET head = ?, data = json_patch(data, ?), expires_at = ? "
            "WHERE key = ? AND expires_at > ? AND user_key IS ?"
        )
        self._sql_update_head = (
            f"UPDATE {table} SET head = ?, expires_at = ? WHERE key = ? AND expires_at > ? AND user_key IS ?"
        )
        self._sql_update_user = (
            f"UPDATE {table} SET head = ?, data = json_patch(data, ?), expires_at = ?, user_key = ? "
            "WHERE key = ? AND expires_at > ?"
        )
        # Deletes rows whether or not they expired; reports which were still live.
        self._sql_delete = f"DELETE FROM {table} WHERE key = ? RETURNING expires_at > ?"
        self._sql_user = f"SELECT key, head FROM {table} WHERE user_key = ? AND expires_at > ?"
        self._sql_delete_user = (
            f"DELETE FROM {table} WHERE user_key = ? AND key IS NOT ? RETURNING expires_at > ?"
        )
        # A scan (no index serves it): only for the CLI's diagnostics, never per request.
        self._sql_registries = (
            f"SELECT DISTINCT user_key FROM {table} WHERE user_key IS NOT NULL "
            "AND substr(user_key, instr(user_key, '/') + 1) = ? AND expires_at > ?"
        )
        # Expired rows are found by walking the primary key (expires_at has no index: it
        # changes on every write, and keeping an index of it would double a write's cost),
        # in batches deleted each by a short statement of its own.
        self._sql_expired = (
            f"SELECT key FROM {table} WHERE key > ? AND expires_at <= ? ORDER BY key LIMIT {_PURGE_BATCH}"
        )
        self._sql_purge = (
            f"DELETE FROM {table} WHERE key IN (SELECT value FROM json_each(?)) AND expires_at <= ?"
        )
        try:
            self._migrate(create)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"SQLiteStore could not open or create {path!r}: {exc}") from exc
        self._async = _AsyncSQLiteStore(self)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    def asyncio(self) -> _AsyncSQLiteStore:
        """The asyncio face the ASGI middleware uses: inline, a thread only when locked."""
        return self._async

    # -- the database ----------------------------------------------------------------

    def _migrate(self, create: bool = True) -> None:
        # On a connection of its own, closed after: the constructing process (a
        # forking server's master, say) then holds no connection its workers inherit.
        with contextlib.closing(self._open(wal=True)) as connection:
            try:
                connection.execute("SELECT json_patch('{}', '{}')")
            except sqlite3.OperationalError as exc:
                raise ConfigurationError(
                    f"SQLiteStore needs SQLite's JSON functions, which this SQLite "
                    f"({sqlite3.sqlite_version}) lacks: use SQLite 3.38 or newer"
                ) from exc
            if create:
                self._create_table(connection)
            elif (
                connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.table,)
                ).fetchone()
                is None
            ):
                raise ConfigurationError(
                    f"SQLiteStore: the database {os.path.abspath(self.path)!r} has no table "
                    f"{self.table!r}; check the table name, or create it with `{self._migrate_command()}`"
                )

    def _create_table(self, connection: sqlite3.Connection) -> None:
        table = self.table
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if columns and "head" not in columns:
            raise ConfigurationError(
                f"SQLiteStore: the table {table!r} in {self.path!r} was made by a development "
                "version of sessionware with another layout; delete the file (or drop the table) "
                "to start afresh, or give a new table= name"
            )
        connection.executescript(
            f"""
            CREATE TABLE IF NOT EXISTS {table} (
                key TEXT PRIMARY KEY,  -- "<group>/<SHA-256 of the session ID>", never the ID itself
                head BLOB NOT NULL,    -- the session's times and log-in state
                data TEXT NOT NULL,    -- JSON object: field name -> the key's value as JSON text
                user_key TEXT,         -- "<group>/<user id>" once logged in, for the registry
                expires_at INTEGER NOT NULL  -- unix time in milliseconds
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS {table}_user_key ON {table} (user_key) WHERE user_key IS NOT NULL;
            """
        )

    def _open(self, timeout: float | None = None, *, wal: bool = False) -> sqlite3.Connection:
        """A connection, set up; ``wal`` also puts the file in write-ahead-log mode.

        A new connection's first statement can find the file locked: another
        process's last connection closing (it checkpoints the log and removes it
        under an exclusive lock), or one recovering the log's index -- and SQLite
        then refuses at once, without the busy timeout's wait. A connection that
        must never wait (the event loop's: ``timeout=0``) raises ``WouldBlock``
        (the call moves to the thread pool); any other waits for the lock, as its
        busy timeout would, up to the store's timeout, then raises ``StoreBusy``.
        WAL mode is a property of the file, so only the constructor sets it.
        """
        wait = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            connection = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
            try:
                if wal:
                    connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                return connection
            except sqlite3.OperationalError as exc:
                connection.close()
                if not _is_busy(exc):
                    raise
                if wait == 0:
                    raise WouldBlock() from exc
                if time.monotonic() + pause > deadline:
                    raise StoreBusy(
                        f"SQLiteStore({self.path!r}): the database stayed locked for {wait} s "
                        f"while a connection was opened: {exc}"
                    ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _execute(self, cursor: sqlite3.Cursor, sql: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return cursor.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._error(cursor, exc) from exc

    def _error(self, cursor: sqlite3.Cursor, exc: sqlite3.Error) -> Exception:
        """What an SQLite error means here: on the event loop's cursor, a lock held by another
        writer is ``WouldBlock`` (the call moves to a thread); elsewhere it is ``StoreBusy``."""
        if isinstance(exc, sqlite3.OperationalError):
            if _is_busy(exc):
                if type(cursor) is _LoopCursor:
                    return WouldBlock()
                return StoreBusy(
                    f"SQLiteStore({self.path!r}): the database stayed locked for {self._timeout} s "
                    f"(another process or thread kept a write transaction open): {exc}"
                )
            if str(exc).startswith("no such table"):  # dropped, or the file replaced, since start-up
                return StoreError(
                    f"SQLiteStore({self.path!r}): the table {self.table!r} does not exist; create it "
                    f"with `{self._migrate_command()}` (or restart the app: SQLiteStore creates it)"
                )
            return StoreUnavailable(f"SQLiteStore({self.path!r}): {exc}")
        return StoreError(f"SQLiteStore({self.path!r}): {exc}")

    def _migrate_command(self) -> str:
        """The command that creates this store's file and table."""
        named = "" if self.table == "sessionware_sessions" else f" --table {self.table}"
        return f"python -m sessionware migrate --store sqlite:///{self.path}{named}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- the operations, on a given connection --------------------------------------

    def _load(self, cursor: sqlite3.Cursor, key: str) -> StoredRecord | None:
        try:  # written out (no _execute): this runs on every request
            row = cursor.execute(self._sql_load, (key, int(self._clock() * 1000))).fetchone()
        except sqlite3.Error as exc:
            raise self._error(cursor, exc) from exc
        if row is None:
            return None
        try:
            fields = load_object(row[1])
        except (ValueError, StopIteration, RecursionError):
            fields = None
        if type(fields) is not dict:
            logger.warning("SQLiteStore(%r): the record under %r does not decode; ignored", self.path, key)
            return None
        return row[0], fields

    def _create(
        self,
        cursor: sqlite3.Cursor,
        key: str,
        head: bytes,
        fields: Mapping[str, str],
        ttl: int,
        user: str | None,
    ) -> None:
        now = self._now_ms()
        data = dump_text(dict(fields))
        self._execute(cursor, self._sql_create, (key, head, data, user, now + ttl * 1000))

    def _update(self, cursor: sqlite3.Cursor, key: str, change: Change) -> bool:
        now = int(self._clock() * 1000)
        head, fields, removed, ttl, user = change
        expires = now + ttl * 1000
        try:  # written out (no _execute): this runs on every write
            if fields or removed:
                if removed:
                    patch: dict[str, str | None] = dict(fields)
                    patch.update(dict.fromkeys(removed))  # null: json_patch removes the member
                    text = dump_text(patch)
                else:
                    text = dump_text(fields if type(fields) is dict else dict(fields))
                if cursor.execute(self._sql_update, (head, text, expires, key, now, user)).rowcount == 1:
                    return True
                parameters: tuple[Any, ...] = (head, text, expires, user, key, now)
            else:
                if cursor.execute(self._sql_update_head, (head, expires, key, now, user)).rowcount == 1:
                    return True
                parameters = (head, "{}", expires, user, key, now)
        except sqlite3.Error as exc:
            raise self._error(cursor, exc) from exc
        # Not there, or filed under another user: the record moves to this one (rare).
        return self._execute(cursor, self._sql_update_user, parameters).rowcount == 1

    def _delete(self, cursor: sqlite3.Cursor, key: str) -> bool:
        rows = self._execute(cursor, self._sql_delete, (key, self._now_ms())).fetchall()  # ends the statement
        return bool(rows and rows[0][0])

    def _purge_due(self) -> bool:
        if not self._purge_interval:
            return False
        now = self._now_ms()
        if now < self._next_purge:
            return False
        self._next_purge = now + int(self._purge_interval * 1000)
        return True

    def _purge_quietly(self) -> None:
        try:
            self.purge_expired()
        except StoreError as exc:  # housekeeping must never fail a write that happened
            logger.warning("SQLiteStore could not purge expired sessions (will retry): %s", exc)

    # -- the synchronous face (WSGI, the CLI) -------------------------------------------

    def load(self, key: str) -> StoredRecord | None:
        return self._load(self._waiting.get(), key)

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        self._create(self._waiting.get(), key, head, fields, ttl, user)
        if self._purge_due():
            self._purge_quietly()

    def update(self, key: str, change: Change) -> bool:
        return self._update(self._waiting.get(), key, change)

    def delete(self, key: str) -> bool:
        return self._delete(self._waiting.get(), key)

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        rows = self._execute(self._waiting.get(), self._sql_user, (user, self._now_ms())).fetchall()
        return [(key, bytes(head)) for key, head in rows]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        rows = self._execute(
            self._waiting.get(), self._sql_delete_user, (user, keep, self._now_ms())
        ).fetchall()
        return sum(1 for (live,) in rows if live)

    def registry_keys(self, user_id: str) -> list[str]:
        """Every registry key (``"<group>/<user id>"``) live sessions of ``user_id`` are filed
        under, whatever secret made them: a scan, for diagnostics (the CLI), not for requests."""
        rows = self._execute(self._waiting.get(), self._sql_registries, (user_id, self._now_ms())).fetchall()
        return [user_key for (user_key,) in rows]

    def purge_expired(self) -> int:
        cursor = self._waiting.get()
        now = self._now_ms()
        deleted, after = 0, ""
        while True:
            keys = [key for (key,) in self._execute(cursor, self._sql_expired, (after, now)).fetchall()]
            if not keys:
                return deleted
            deleted += self._execute(cursor, self._sql_purge, (dump_text(keys), now)).rowcount
            if len(keys) < _PURGE_BATCH:
                return deleted
            after = keys[-1]

    def _waiting_call(self, operation: Callable[..., T], *args: Any) -> T:
        """``operation`` on this thread's connection that waits for locks (for the thread pool)."""
        return operation(self._waiting.get(), *args)

    def checkpoint(self) -> None:
        """Move the write-ahead log into the database file (SQLite's PASSIVE checkpoint)."""
        self._execute(self._waiting.get(), "PRAGMA wal_checkpoint(PASSIVE)", ())


class _Connections:
    """One connection per thread, opened by this process, and the cursor each call reuses.

    SQLite connections must not cross ``fork()``: a child (a forking server's
    worker, ``multiprocessing`` with the fork start method) that inherited one
    opens its own instead. The inherited one is left as it is, never used nor
    closed -- closing it could checkpoint or unlock the parent's database --
    and kept referenced so that garbage collection does not close it either.

    SQLite's file locks belong to the process, and a child inherits the
    parent's: fork while no other thread of the parent is inside a write (as
    forking servers do, before serving), or the child may find the database
    locked.
    """

    def __init__(
        self, open_connection: Callable[[], sqlite3.Connection], cursor: type[sqlite3.Cursor] = sqlite3.Cursor
    ) -> None:
        self._open = open_connection
        self._cursor = cursor
        self._local = threading.local()

    def get(self) -> sqlite3.Cursor:
        opened: tuple[int, sqlite3.Cursor] | None = getattr(self._local, "cursor", None)
        if opened is not None:
            if opened[0] == _process.pid:
                return opened[1]
            _INHERITED.append(opened[1].connection)
        cursor = self._open().cursor(self._cursor)
        self._local.cursor = (_process.pid, cursor)
        return cursor


class _LoopCursor(sqlite3.Cursor):
    """A cursor on the event loop's connection: where it would wait for a lock, WouldBlock."""


class _AsyncSQLiteStore:
    """The asyncio face of a :class:`SQLiteStore`: inline first, a thread when locked.

    Each call first runs on the event loop's own connection (:attr:`inline`),
    which never waits for a lock (busy timeout 0) and never checkpoints: in
    write-ahead-log mode a read never waits for a writer, and a short write
    costs microseconds. If another writer holds the lock, SQLite refuses at
    once, before changing anything, and the call is made again on the thread
    pool, on a connection that waits up to the store's timeout. The log is
    checkpointed on the pool every ``_CHECKPOINT_EVERY`` inline writes, and
    expired rows are purged there.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        #: The loop-side face, called directly by the engine's driver (see ``_steps.run_async``).
        self.inline = _Inline(self)
        self._executor: tuple[int, ThreadPoolExecutor] | None = None

    def _pool(self) -> ThreadPoolExecutor:
        # Per process: a pool's threads do not survive fork(), and an inherited pool would
        # take tasks that no thread ever runs.
        pid = _process.pid
        if self._executor is None or self._executor[0] != pid:
            self._executor = (pid, ThreadPoolExecutor(max_workers=4, thread_name_prefix="sessionware-sqlite"))
        return self._executor[1]

    async def _in_thread(self, operation: Callable[..., T], *args: Any) -> T:
        """``operation`` on a pool thread's connection, which waits for locks."""
        function = functools.partial(self._store._waiting_call, operation, *args)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (e.g. trio through anyio)
            import anyio.to_thread

            return await anyio.to_thread.run_sync(function)
        return await loop.run_in_executor(self._pool(), function)

    def _background(self, function: Callable[[], None]) -> None:
        def run() -> None:
            try:
                function()
            except Exception as exc:  # housekeeping: logged, never raised into a request
                logger.warning("SQLiteStore(%r): housekeeping failed (will retry): %s", self._store.path, exc)

        self._pool().submit(run)

    async def load(self, key: str) -> StoredRecord | None:
        try:
            return self.inline.load(key)
        except WouldBlock:
            return await self._in_thread(self._store._load, key)

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        try:
            self.inline.create(key, head, fields, ttl, user)
        except WouldBlock:
            await self._in_thread(self._store._create, key, head, fields, ttl, user)

    async def update(self, key: str, change: Change) -> bool:
        try:
            return self.inline.update(key, change)
        except WouldBlock:
            return await self._in_thread(self._store._update, key, change)

    async def delete(self, key: str) -> bool:
        try:
            return self.inline.delete(key)
        except WouldBlock:
            return await self._in_thread(self._store._delete, key)

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return await self._in_thread(lambda cursor: self._store.user_sessions(user))

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return await self._in_thread(lambda cursor: self._store.delete_user_sessions(user, keep))


class _Inline:
    """The event loop's face of a :class:`SQLiteStore`: never waits, ``WouldBlock`` when locked."""

    def __init__(self, face: _AsyncSQLiteStore) -> None:
        self._face = face
        self._store = face._store
        self._connections = _Connections(self._open, _LoopCursor)
        self._writes = 0

    def _open(self) -> sqlite3.Connection:
        connection = self._store._open(timeout=0)
        connection.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on the thread pool
        return connection

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % _CHECKPOINT_EVERY == 0:
            self._face._background(self._store.checkpoint)
        if self._store._purge_due():
            self._face._background(self._store._purge_quietly)

    # The loop's cursor raises WouldBlock itself where a lock is held (SQLiteStore._error).

    def load(self, key: str) -> StoredRecord | None:
        return self._store._load(self._connections.get(), key)

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        self._store._create(self._connections.get(), key, head, fields, ttl, user)
        self._wrote()

    def update(self, key: str, change: Change) -> bool:
        written = self._store._update(self._connections.get(), key, change)
        self._wrote()
        return written

    def delete(self, key: str) -> bool:
        return self._store._delete(self._connections.get(), key)

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        raise WouldBlock  # may read many rows: on the thread pool

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        raise WouldBlock
