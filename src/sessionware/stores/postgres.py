"""The PostgreSQL store: shared sessions in the database the app already runs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigurationError, MissingDependency, StoreBusy, StoreError, StoreUnavailable
from ..typing import Change, StoredRecord
from ._loops import PerLoop

try:
    import psycopg
    import psycopg.errors
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependency("psycopg", extra="postgres") from exc

from ._postgres_pools import (
    WATCHDOG,
    AsyncConnection,
    AsyncPool,
    Connection,
    Cutter,
    GivenAsyncPool,
    GivenPool,
    Pool,
    Server,
    cause_of,
    late,
    options_of,
)

__all__ = ["PostgresStore", "migration_sql"]

logger = logging.getLogger("sessionware")
T = TypeVar("T")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PURGE_BATCH = 10_000
_DEFAULT_TABLE = "sessionware_sessions"
#: The columns :func:`migration_sql` makes, as ``format_type`` names their types.
_LAYOUT = {
    "key": "text",
    "head": "bytea",
    "data": "jsonb",
    "user_key": "text",
    "expires_at": "timestamp with time zone",
}
#: A lock that stayed held: the server ended the statement waiting for it (statement_timeout, lock_timeout).
_BUSY = (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)


def migration_sql(table: str = "sessionware_sessions") -> str:
    """The SQL that creates (idempotently) the table a :class:`PostgresStore` uses.

    ``python -m sessionware migrate --store postgresql://...`` runs it;
    ``--print-sql`` prints it for your own migration tool.
    """
    _check_table(table)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    key text PRIMARY KEY,            -- "<group>/<SHA-256 of the session ID>", never the ID itself
    head bytea NOT NULL,             -- times and log-in state (binary)
    data jsonb NOT NULL,             -- {{field name: field value as a JSON *string*}}
    user_key text,                   -- "<group>/<user id>" once logged in, for the registry
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
CREATE INDEX IF NOT EXISTS {table}_user_key ON {table} (user_key) WHERE user_key IS NOT NULL;
"""


def _check_table(table: str) -> None:
    if _IDENTIFIER.fullmatch(table) is None:
        raise ConfigurationError(f"PostgresStore expects table to be a plain SQL identifier, got {table!r}")


class _SQL:
    """The statements, one per call, shared by both faces. Times come from the database's clock."""

    def __init__(self, table: str) -> None:
        ttl = "now() + make_interval(secs => %s)"
        self.load = f"SELECT head, data FROM {table} WHERE key = %s AND expires_at > now()"
        self.create = (
            f"INSERT INTO {table} (key, head, data, user_key, expires_at) "
            f"VALUES (%s, %s, %s::jsonb, %s, {ttl}) "
            "ON CONFLICT (key) DO UPDATE SET head = EXCLUDED.head, data = EXCLUDED.data, "
            "user_key = EXCLUDED.user_key, expires_at = EXCLUDED.expires_at"
        )
        # Applied to the row as it is when the UPDATE locks it: under READ COMMITTED
        # a concurrent update that committed first is seen, and merged into.
        self.update = (
            f"UPDATE {table} SET head = %s, data = (data || %s::jsonb) - %s::text[], user_key = %s, "
            f"expires_at = {ttl} WHERE key = %s AND expires_at > now()"
        )
        self.delete = f"DELETE FROM {table} WHERE key = %s RETURNING expires_at > now()"
        self.user = f"SELECT key, head FROM {table} WHERE user_key = %s AND expires_at > now()"
        self.delete_user = (
            f"DELETE FROM {table} WHERE user_key = %s AND key IS DISTINCT FROM %s "
            "RETURNING expires_at > now()"
        )
        # A scan (no index serves it): only for the CLI's diagnostics, never per request.
        self.registries = (
            f"SELECT DISTINCT user_key FROM {table} WHERE user_key IS NOT NULL "
            "AND substr(user_key, strpos(user_key, '/') + 1) = %s AND expires_at > now()"
        )
        self.purge = (
            f"DELETE FROM {table} WHERE key IN "
            f"(SELECT key FROM {table} WHERE expires_at <= now() LIMIT {_PURGE_BATCH})"
        )
        self.columns = (
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        )
        # Statements sent again on a fresh connection if the first one died under
        # them (rare: dead idle connections are dropped before use, see stale).
        # Reads; the update (the same change applied again gives the same row);
        # the insert (its key is new: nobody else knows it yet, so nothing can
        # have changed or deleted it in between). Never the DELETEs: a repeat
        # finds nothing and would report a log-out or revocation as not done.
        self.resendable = frozenset(
            {self.load, self.create, self.update, self.user, self.registries, self.purge}
        )


def _data(fields: Mapping[str, str]) -> str:
    """The ``data`` column for ``fields``: each value's text as a JSON string, never parsed."""
    return json.dumps(dict(fields), separators=(",", ":"))


def _create_parameters(
    key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
) -> tuple[Any, ...]:
    return (key, head, _data(fields), user, ttl)


def _update_parameters(key: str, change: Change) -> tuple[Any, ...]:
    return (change.head, _data(change.fields), list(change.removed), change.user, change.ttl, key)


def _record(rows: list[Any]) -> StoredRecord | None:
    if not rows:
        return None
    head, data = rows[0]
    return bytes(head), data  # jsonb of strings, as psycopg decodes it: the fields as stored


def _heads(rows: list[Any]) -> list[tuple[str, bytes]]:
    return [(key, bytes(head)) for key, head in rows]


def _live(rows: list[Any]) -> int:
    """How many deleted rows were live (``RETURNING expires_at > now()``)."""
    return sum(1 for (live,) in rows if live)


def _migrate_command(table: str) -> str:
    """The command that creates ``table``."""
    named = "" if table == _DEFAULT_TABLE else f" --table {table}"
    return f"python -m sessionware migrate --store postgresql://...{named}"


def _missing_table(table: str) -> str:
    return (
        f"PostgresStore: the table {table!r} does not exist; create it with "
        f"`{_migrate_command(table)}` (or run the SQL that --print-sql shows)"
    )


def _wrong_layout(table: str) -> StoreError:
    return StoreError(
        f"PostgresStore: the table {table!r} does not have the columns this sessionware needs "
        f"({', '.join(f'{name} {kind}' for name, kind in _LAYOUT.items())}). A table with `data bytea` "
        "and `version` columns is the layout of sessionware before its v2 store contract, whose "
        "sessions cannot be read: rename it (ALTER TABLE ... RENAME TO ...) or drop it, which logs "
        f"every user out, then create the table with `{_migrate_command(table)}` (or the SQL "
        "from --print-sql)"
    )


def _failed(
    exc: psycopg.Error, table: str, where: str, connection: Connection | AsyncConnection
) -> StoreError:
    """The sessionware error for what a statement raised."""
    if connection.broken:
        return StoreUnavailable(f"PostgresStore: lost the connection to {where}: {cause_of(exc)}")
    if isinstance(exc, _BUSY):
        return StoreBusy(
            f"PostgresStore: a lock on the table {table!r} stayed held too long: {cause_of(exc)}"
        )
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StoreError(_missing_table(table))
    # The statements use built-in functions and operators only: one "missing" is
    # a column of another type (`data bytea || jsonb`, in the old layout).
    if isinstance(exc, psycopg.errors.UndefinedColumn | psycopg.errors.UndefinedFunction):
        return _wrong_layout(table)
    return StoreError(f"PostgresStore: the statement on the table {table!r} failed: {cause_of(exc)}")


class PostgresStore:
    """Keep sessions in PostgreSQL: for apps on many machines that already run it.

    One row per session: its head (``bytea``), its fields (a ``jsonb`` object of
    field name to the field's JSON text, kept as a JSON *string* so that it
    comes back exactly as written: jsonb would normalise a parsed value,
    ``1e+100`` into an integer), the user it is filed under and its expiry,
    the last two indexed: listing a user's sessions reads only that user's rows.

    Every call is ONE statement, in a transaction of its own (autocommit). An
    update is one ``UPDATE`` that sets the head, merges the fields it sets into
    the row *as it is then* and removes the ones it drops, and only matches a
    live row: requests that change different keys of one session at the same
    time all keep their change, with no version and no retry, and a session
    deleted meanwhile is never written back.

    The table is **not** created behind your back: run the migration once,
    ``python -m sessionware migrate --store postgresql://...`` (or
    :meth:`migrate`), or put the SQL that ``--print-sql`` shows in your own
    migrations. Expired rows are never returned; delete them with
    ``python -m sessionware purge --store postgresql://...`` or
    :meth:`purge_expired`, from cron or a scheduler of your choice.

    Under ASGI the middleware uses the asyncio face (a pool per event loop);
    WSGI apps and the CLI use the synchronous one. Both pools make connections
    on demand, within the call's timeout, and run nothing in the background.
    So the app starts with the database down: calls fail at once with
    :class:`~sessionware.StoreUnavailable` (a 503) and one warning is logged
    (``PostgresStore: cannot connect to postgresql://...: Connection
    refused``); and the first call after the database is back connects, with
    no reconnection backoff to wait out. Idle connections that died (a
    database restart) are noticed before use, without a round trip, and
    replaced. A connection that dies *under* a statement is replaced and the
    statement sent once more only if that is safe: loads, listings, creates
    (the key is new) and updates (the same change again gives the same row),
    never a delete (a repeat would find nothing and report a log-out as not
    done).

    Errors: :class:`~sessionware.StoreUnavailable` when the database cannot be
    reached, the connection fails, or no answer comes within ``timeout``;
    :class:`~sessionware.StoreBusy` when the database answers that a lock
    stayed held (another transaction kept a session's row or the table locked
    for the whole statement timeout); :class:`~sessionware.StoreError`
    otherwise -- saying what to do when the table is missing or in the layout
    of sessionware before its v2 store contract (``data bytea``, ``version``).

    Options:
        conninfo: A libpq connection string or URL,
            ``postgresql://user@host:5432/dbname``.
        pool: An existing ``psycopg_pool.ConnectionPool`` (for WSGI and the
            CLI) instead of ``conninfo``; its connections must be autocommit.
        async_pool: An existing ``psycopg_pool.AsyncConnectionPool`` (for ASGI,
            in its own event loop) instead of ``conninfo``.
        table: Defaults to ``"sessionware_sessions"``.
        timeout: The most seconds a call waits, in all: for a connection
            (a free one, or a new one) and for the server's answer. Past it
            the call fails with :class:`~sessionware.StoreUnavailable`, even if
            the server is frozen or the network silently drops packets (the
            client cuts the connection). PostgreSQL's ``statement_timeout`` is
            set to 90% of it, so a statement waiting on a lock ends first, with
            :class:`~sessionware.StoreBusy`. Defaults to 5.
        max_size: The most connections in use at once, per process (and per
            event loop for the asyncio face). Defaults to 10.

    Known limitations:

    - A statement the server received before the client gave up may still run
      (when a frozen server resumes, say). The call has raised
      :class:`~sessionware.StoreUnavailable`, which means "not known to be
      done", never "done": a log-out or revocation that raised can be retried.
    - An update sent again after its connection died may land after a
      concurrent request's update of the same key, whose value it then
      replaces (as if this one had been the later writer).
    - On the synchronous face, a connection attempt the call gave up on at
      its deadline goes on for up to ``max(2, timeout)`` seconds (libpq's
      connect_timeout), holding its place in the pool; a connection it makes
      is kept for the next call.
    - Idle connections stay open, up to ``max_size`` per process (and per
      event loop); size it to the server's ``max_connections``.
    - When the *task* running an asyncio call is cancelled from outside (a
      client disconnect, the app's own ``wait_for``), psycopg spends up to 5
      more seconds trying to cancel the statement on a frozen server; the
      event loop is not blocked meanwhile, but a pool slot is held.
    - A pool passed as ``pool`` or ``async_pool`` is used as it is: it
      reconnects after an outage on psycopg_pool's own schedule (a backoff of
      up to minutes), and logs as psycopg_pool does. Like any psycopg_pool
      pool, it must not cross ``fork()``. The store's own pools start empty in
      a forked child and never touch the parent's connections.

    Example::

        SessionMiddleware(app, secret_key_base=secret,
                          store=PostgresStore("postgresql://app@db.internal/app"))
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        async_pool: AsyncConnectionPool[Any] | None = None,
        table: str = "sessionware_sessions",
        timeout: float = 5.0,
        max_size: int = 10,
    ) -> None:
        if conninfo is None and pool is None and async_pool is None:
            raise ConfigurationError(
                "PostgresStore expects conninfo such as 'postgresql://user@host/db', or a pool"
            )
        _check_table(table)
        if not timeout > 0:
            raise ConfigurationError(f"PostgresStore expects timeout to be positive seconds, got {timeout!r}")
        if max_size < 1:
            raise ConfigurationError(f"PostgresStore expects max_size to be at least 1, got {max_size!r}")
        self.table = table
        self.conninfo = conninfo
        self._timeout = timeout
        self._sql = _SQL(table)
        given = pool or async_pool
        self._server = Server(
            conninfo if given is None or not isinstance(given.conninfo, str) else given.conninfo
        )
        kwargs = {
            "autocommit": True,
            # psycopg enforces this itself (at least 2 s); the call's deadline cuts it shorter.
            "connect_timeout": max(2, round(timeout)),
            # The server gives up on a slow statement a little before the client
            # deadline, so a lock wait ends with the connection still usable. After
            # the conninfo's own options (a search_path, say), which this replaces.
            "options": " ".join(
                filter(None, [options_of(conninfo), f"-c statement_timeout={max(1, int(timeout * 900))}"])
            ),
        }
        self._pool: Pool | GivenPool | None = None
        if pool is not None:
            self._pool = GivenPool(pool)
        elif conninfo is not None:
            self._pool = Pool(conninfo, kwargs, max_size, self._server)
        self._async = _AsyncPostgresStore(self, kwargs, max_size, async_pool)

    def __repr__(self) -> str:
        return f"PostgresStore(table={self.table!r})"

    def asyncio(self) -> _AsyncPostgresStore:
        """The asyncio face the ASGI middleware uses."""
        return self._async

    def _run(self, work: Callable[[Connection], T], *, resend: bool = False) -> T:
        """Run ``work`` on a pooled connection within the store's timeout.

        If the connection dies under it and ``resend`` is true (the statement
        is safe to send twice, see ``_SQL.resendable``), once more on a fresh one.
        """
        if self._pool is None:
            raise ConfigurationError(
                "PostgresStore was given only an async_pool; pass conninfo= or pool= to use it "
                "synchronously (WSGI apps, the CLI)"
            )
        deadline = time.monotonic() + self._timeout
        while True:
            with self._pool.connection(deadline, self._timeout) as connection:
                token = WATCHDOG.arm(deadline, connection)
                try:
                    result = work(connection)
                except psycopg.Error as exc:
                    if WATCHDOG.disarm(token):
                        raise late(self._server.where, self._timeout) from exc
                    if not (resend and connection.broken):
                        raise _failed(exc, self.table, self._server.where, connection) from exc
                    resend = False
                    continue
                finally:
                    cut = WATCHDOG.disarm(token)
                if cut:  # the answer came as the deadline passed: keep it, not the connection
                    connection.close()
                return result

    def _execute(self, statement: str, parameters: tuple[Any, ...]) -> tuple[int, list[Any]]:
        """One statement: ``(rowcount, rows)``."""

        def work(connection: Connection) -> tuple[int, list[Any]]:
            cursor = connection.execute(statement, parameters)
            return cursor.rowcount, cursor.fetchall() if cursor.description is not None else []

        return self._run(work, resend=statement in self._sql.resendable)

    def migrate(self) -> None:
        """Create the table and its indexes if they do not exist (see :func:`migration_sql`).

        Raises :class:`~sessionware.StoreError` if a table of that name exists
        with other columns (such as sessionware's old layout), saying what to do.
        """

        def work(connection: Connection) -> dict[str, str]:
            connection.execute(migration_sql(self.table))
            return dict(connection.execute(self._sql.columns, (self.table,)).fetchall())

        columns = self._run(work, resend=True)
        if any(columns.get(name) != kind for name, kind in _LAYOUT.items()):
            raise _wrong_layout(self.table)

    def load(self, key: str) -> StoredRecord | None:
        return _record(self._execute(self._sql.load, (key,))[1])

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        self._execute(self._sql.create, _create_parameters(key, head, fields, ttl, user))

    def update(self, key: str, change: Change) -> bool:
        return self._execute(self._sql.update, _update_parameters(key, change))[0] == 1

    def delete(self, key: str) -> bool:
        return _live(self._execute(self._sql.delete, (key,))[1]) == 1

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return _heads(self._execute(self._sql.user, (user,))[1])

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return _live(self._execute(self._sql.delete_user, (user, keep))[1])

    def registry_keys(self, user_id: str) -> list[str]:
        """Every registry key (``"<group>/<user id>"``) live sessions of ``user_id`` are filed
        under, whatever secret made them: a scan, for diagnostics (the CLI), not for requests."""
        return [user_key for (user_key,) in self._execute(self._sql.registries, (user_id,))[1]]

    def purge_expired(self) -> int:
        """Delete expired rows, in batches of 10,000 (one statement each); return how many."""
        total = 0
        while True:
            deleted = self._execute(self._sql.purge, ())[0]
            total += deleted
            if deleted < _PURGE_BATCH:
                return total

    def close(self) -> None:
        """Close the synchronous pool's idle connections (a pool passed in is its owner's to close)."""
        if isinstance(self._pool, Pool):
            self._pool.close()


class _AsyncPostgresStore:
    """The asyncio face of a :class:`PostgresStore` (same table, same statements)."""

    def __init__(
        self,
        store: PostgresStore,
        kwargs: dict[str, Any],
        max_size: int,
        given: AsyncConnectionPool[Any] | None,
    ) -> None:
        self.table = store.table
        self._sql = store._sql
        self._server = store._server
        self._timeout = store._timeout
        self._given = None if given is None else GivenAsyncPool(given)
        self._pools: PerLoop[AsyncPool] | None = None
        conninfo = store.conninfo
        if given is None and conninfo is not None:

            def create() -> AsyncPool:
                return AsyncPool(conninfo, kwargs, max_size, store._server)

            async def close(pool: AsyncPool) -> None:
                await pool.close()

            self._pools = PerLoop(create, close)

    async def _pool(self) -> AsyncPool | GivenAsyncPool:
        if self._given is not None:
            return self._given
        if self._pools is None:
            raise ConfigurationError(
                "PostgresStore was given only a synchronous pool; pass conninfo= or async_pool= "
                "to use it under ASGI"
            )
        return await self._pools.get()

    async def _execute(self, statement: str, parameters: tuple[Any, ...]) -> tuple[int, list[Any]]:
        """One statement within the store's timeout: ``(rowcount, rows)``.

        Once more on a fresh connection if the first died under a statement
        that is safe to send twice (``_SQL.resendable``).
        """
        deadline = time.monotonic() + self._timeout
        resend = statement in self._sql.resendable
        pool = await self._pool()
        loop = asyncio.get_running_loop()
        while True:
            async with pool.connection(deadline, self._timeout) as connection:
                cutter = Cutter(connection)
                watchdog = loop.call_later(max(0.0, deadline - time.monotonic()), cutter)
                try:
                    cursor = await connection.execute(statement, parameters)
                    rows = await cursor.fetchall() if cursor.description is not None else []
                except psycopg.Error as exc:
                    if cutter.fired:
                        raise late(self._server.where, self._timeout) from exc
                    if not (resend and connection.broken):
                        raise _failed(exc, self.table, self._server.where, connection) from exc
                    resend = False
                    continue
                finally:
                    watchdog.cancel()
                if cutter.fired:  # the answer came as the deadline passed: keep it, not the connection
                    await connection.close()
                return cursor.rowcount, rows

    async def load(self, key: str) -> StoredRecord | None:
        return _record((await self._execute(self._sql.load, (key,)))[1])

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        await self._execute(self._sql.create, _create_parameters(key, head, fields, ttl, user))

    async def update(self, key: str, change: Change) -> bool:
        return (await self._execute(self._sql.update, _update_parameters(key, change)))[0] == 1

    async def delete(self, key: str) -> bool:
        return _live((await self._execute(self._sql.delete, (key,)))[1]) == 1

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return _heads((await self._execute(self._sql.user, (user,)))[1])

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return _live((await self._execute(self._sql.delete_user, (user, keep)))[1])

    async def aclose(self) -> None:
        """Close this event loop's pool (a new one is made if the store is used again)."""
        if self._pools is not None:
            await self._pools.aclose()
