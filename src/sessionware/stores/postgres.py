"""The PostgreSQL store: shared sessions in the database the app already runs."""

from __future__ import annotations

import asyncio
import os
import re
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from ..errors import ConfigurationError, MissingDependency, StoreError, StoreUnavailable
from ._loops import PerLoop

try:
    import psycopg
    import psycopg.errors
    from psycopg.pq import TransactionStatus
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependency("psycopg", extra="postgres") from exc

__all__ = ["PostgresStore", "migration_sql"]

T = TypeVar("T")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PURGE_BATCH = 10_000


def migration_sql(table: str = "sessionware_sessions") -> str:
    """The SQL that creates (idempotently) the table a :class:`PostgresStore` uses.

    ``python -m sessionware migrate --postgres URL`` runs it;
    ``--print-sql`` prints it for your own migration tool.
    """
    _check_table(table)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    key text PRIMARY KEY,            -- "<group>/<SHA-256 of the session ID>", never the ID itself
    data bytea NOT NULL,             -- the session record (JSON inside, no pickle)
    version bigint NOT NULL,         -- compare-and-set counter
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
    """The statements, shared by both faces. Times come from the database's clock."""

    def __init__(self, table: str) -> None:
        ttl = "now() + make_interval(secs => %s)"
        self.load = f"SELECT data, version FROM {table} WHERE key = %s AND expires_at > now()"
        self.insert = (
            f"INSERT INTO {table} (key, data, version, user_key, expires_at) VALUES (%s, %s, 1, %s, {ttl}) "
            "ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, version = "
            f"{table}.version + 1, user_key = EXCLUDED.user_key, expires_at = EXCLUDED.expires_at"
        )
        self.update = (
            f"UPDATE {table} SET data = %s, version = version + 1, user_key = %s, expires_at = {ttl} "
            "WHERE key = %s AND version = %s AND expires_at > now()"
        )
        self.delete = f"DELETE FROM {table} WHERE key = %s RETURNING expires_at > now()"
        self.user = f"SELECT key, data FROM {table} WHERE user_key = %s AND expires_at > now()"
        self.delete_user = (
            f"DELETE FROM {table} WHERE user_key = %s AND key IS DISTINCT FROM %s "
            "RETURNING expires_at > now()"
        )
        self.purge = (
            f"DELETE FROM {table} WHERE key IN "
            f"(SELECT key FROM {table} WHERE expires_at <= now() LIMIT {_PURGE_BATCH})"
        )
        # Statements sent again on a fresh connection if the first one died under
        # them (rare: dead idle connections are dropped before use, see _stale).
        # Reads, and the compare-and-set update: a repeat of an update that did
        # happen finds the version moved on and reports a conflict, which the
        # engine resolves by reading again. Never the INSERT (a repeat could
        # bring back a row deleted in between) nor the DELETEs (a repeat finds
        # nothing and would report a log-out or revocation as not done).
        self.retryable = frozenset({self.load, self.update, self.user, self.purge})

    def save(
        self, key: str, data: bytes, ttl: int, version: int | None, user: str | None
    ) -> tuple[str, tuple[Any, ...]]:
        if version is None:
            return self.insert, (key, data, user, ttl)
        return self.update, (data, user, ttl, key, version)


def _failed(exc: Exception, table: str) -> StoreError:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StoreError(
            f"PostgresStore: the table {table!r} does not exist; create it with "
            "`python -m sessionware migrate --postgres URL` (or run the SQL from --print-sql)"
        )
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return StoreUnavailable(f"PostgresStore: {exc}")
    return StoreError(f"PostgresStore: {exc}")


def _late(timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: no answer within {timeout} s")


def _stale(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle pooled connection is dead, without a round trip.

    An idle connection has nothing to read: if its socket is readable, the
    server closed it (a restart, an idle timeout) or sent a FATAL error. So it
    is dropped *before* a statement is sent on it, and no statement is ever
    sent twice because its connection turned out dead.
    """
    if connection.closed:
        return True
    try:
        fd = connection.pgconn.socket
    except psycopg.OperationalError:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover - Windows


def _cut(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Shut the connection's socket down, so a read waiting on a stalled server returns.

    ``shutdown()`` acts on the socket, not on this duplicate of its descriptor:
    libpq sees the connection end, and psycopg raises ``OperationalError`` and
    marks the connection broken (the pool then discards it). A frozen server
    keeps the TCP connection alive (its kernel still acknowledges), so
    ``statement_timeout``, TCP keepalives and ``tcp_user_timeout`` would all
    leave the client waiting; only a deadline on the client side ends it.
    """
    try:
        fd = connection.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg.OperationalError):
        pass  # already closed: nothing is waiting on it


class _Cutter:
    """``loop.call_later(delay, _Cutter(connection))``: cut it, and remember having done so."""

    __slots__ = ("connection", "fired")

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        _cut(self.connection)


class _Watchdog:
    """One daemon thread that cuts (:func:`_cut`) connections whose call outlived its deadline.

    The synchronous face cannot time out a blocked psycopg call from the calling
    thread, so this thread does it; the asyncio face uses ``loop.call_later``.
    """

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._fired: set[int] = set()
        self._tokens = 0
        self._reset()

    def _reset(self) -> None:
        """A fresh lock and no thread (also in a forked child, where the lock may be held)."""
        self._wake = threading.Condition()
        self._pid = 0

    def arm(self, deadline: float, connection: psycopg.Connection[Any]) -> int:
        with self._wake:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._armed.clear()
                self._fired.clear()
                threading.Thread(target=self._watch, name="sessionware-pg-watchdog", daemon=True).start()
            self._tokens += 1
            earliest = min((armed for armed, _ in self._armed.values()), default=None)
            self._armed[self._tokens] = (deadline, connection)
            if earliest is None or deadline < earliest:  # else the thread wakes early enough
                self._wake.notify()
            return self._tokens

    def disarm(self, token: int) -> bool:
        """Stop watching; return whether the deadline passed and the connection was cut."""
        with self._wake:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _watch(self) -> None:
        pid = os.getpid()
        while True:
            with self._wake:
                if self._pid != pid:
                    return
                now = time.monotonic()
                due = [token for token, (deadline, _) in self._armed.items() if deadline <= now]
                # Cut under the lock (shutdown() does not block): disarm() waits for
                # it, so a connection is never cut after its call has handed it back.
                for token in due:
                    _cut(self._armed.pop(token)[1])
                self._fired.update(due)
                if not due:
                    nearest = min((deadline for deadline, _ in self._armed.values()), default=None)
                    self._wake.wait(None if nearest is None else nearest - now)


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


class PostgresStore:
    """Keep sessions in PostgreSQL: for apps on many machines that already run it.

    One row per session, with the expiry and the user it is bound to, both
    indexed: listing a user's sessions reads only that user's rows. Writes are
    a compare-and-set on the row's version, so concurrent requests never lose
    each other's changes and a deleted session is never written back.

    The table is **not** created behind your back: run the migration once,
    ``python -m sessionware migrate --postgres URL`` (or :meth:`migrate`), or put
    the SQL that ``--print-sql`` shows in your own migrations. Expired rows are
    never returned; delete them with ``python -m sessionware purge --store URL``
    or :meth:`purge_expired`, from cron or a scheduler of your choice.

    Under ASGI the middleware uses an asyncio connection pool (one per event
    loop); WSGI apps and the CLI use a synchronous pool. Pools open on first
    use, so the app starts even if the database is down; until it is back,
    requests fail closed with :class:`~sessionware.StoreUnavailable` (a 503),
    and they work again without a restart when it is.

    Options:
        conninfo: A libpq connection string or URL,
            ``postgresql://user@host:5432/dbname``.
        pool: An existing ``psycopg_pool.ConnectionPool`` (for WSGI and the
            CLI) instead of ``conninfo``; its connections must be autocommit.
        async_pool: An existing ``psycopg_pool.AsyncConnectionPool`` (for ASGI,
            in its own event loop) instead of ``conninfo``. Without it, each
            event loop gets a small pool of its own, without background tasks.
        table: Defaults to ``"sessionware_sessions"``.
        timeout: The most seconds a call waits, in all: for a connection
            (from the pool, or a new one) and for the server's answer. Past it
            the call fails with :class:`~sessionware.StoreUnavailable`, even if
            the server is frozen or the network silently drops packets (the
            client cuts the connection; PostgreSQL's ``statement_timeout``,
            set to 90% of it, only ends statements on a server that runs).
            Defaults to 5.
        min_size / max_size: Pool size. Default to 1 and 10.

    After a database restart, pooled connections that died are noticed before
    use (their socket is readable while idle) and replaced, so the first
    requests succeed. A connection that dies *under* a statement is retried
    once on a fresh one only for statements safe to send twice (reads and
    the compare-and-set update), never for an insert or a delete.

    Known limitations:

    - A statement the server received before the client gave up may still run
      (when a frozen server resumes, say). The call has raised
      :class:`~sessionware.StoreUnavailable`, which means "not known to be
      done", never "done": a log-out or revocation that raised can be retried.
    - A retried compare-and-set update whose first attempt did commit (its
      answer was lost) reports a conflict; the engine then merges the
      request's changes into the record again, which can overwrite, with the
      same values, a write to the same key that landed in between.
    - When the *task* running an asyncio call is cancelled from outside (a
      client disconnect, the app's own ``wait_for``), psycopg spends up to 5
      more seconds trying to cancel the statement on a frozen server; the
      event loop is not blocked meanwhile, but a pool slot is held.
    - Dead connections are noticed before use in the pools the store makes;
      a pool passed as ``async_pool`` is used as it is.
    - The synchronous pool (like any psycopg pool) must not cross ``fork()``:
      make the store, or first use it, in each worker process.

    Example::

        SessionMiddleware(app, secret_key_base=secret,
                          store=PostgresStore("postgresql://app@db.internal/app"))
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: ConnectionPool | None = None,
        async_pool: AsyncConnectionPool | None = None,
        table: str = "sessionware_sessions",
        timeout: float = 5.0,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        if conninfo is None and pool is None and async_pool is None:
            raise ConfigurationError(
                "PostgresStore expects conninfo such as 'postgresql://user@host/db', or a pool"
            )
        _check_table(table)
        if not timeout > 0:
            raise ConfigurationError(f"PostgresStore expects timeout to be positive seconds, got {timeout!r}")
        if not 1 <= min_size <= max_size:
            raise ConfigurationError(
                f"PostgresStore expects 1 <= min_size <= max_size, got {min_size}, {max_size}"
            )
        self.table = table
        self.conninfo = conninfo
        self._timeout = timeout
        self._sql = _SQL(table)
        options = {
            "autocommit": True,
            # psycopg enforces this itself (at least 2 s); the call's deadline cuts it shorter.
            "connect_timeout": max(2, round(timeout)),
            # The server gives up on a slow statement a little before the client
            # deadline, so a lock wait ends with the connection still usable.
            "options": f"-c statement_timeout={max(1, int(timeout * 900))}",
        }
        settings: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": timeout,
            "kwargs": options,
        }
        self._pool = pool
        if pool is None and conninfo is not None:
            self._pool = ConnectionPool(conninfo, open=False, **settings)
        self._opened = pool is not None
        self._async = _AsyncPostgresStore(self._sql, table, conninfo, async_pool, settings)

    def __repr__(self) -> str:
        return f"PostgresStore(table={self.table!r})"

    def asyncio(self) -> _AsyncPostgresStore:
        """The asyncio face the ASGI middleware uses."""
        return self._async

    @contextmanager
    def _connection(self, deadline: float) -> Iterator[psycopg.Connection[Any]]:
        """A live pooled connection, waiting for one until ``deadline`` at most."""
        pool = self._pool
        if pool is None:
            raise ConfigurationError(
                "PostgresStore was given only an async_pool; pass conninfo= or pool= to use it "
                "synchronously (WSGI apps, the CLI)"
            )
        if not self._opened:
            pool.open(wait=False)
            self._opened = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"no connection within {self._timeout} s")
            connection = pool.getconn(timeout=remaining)
            if not _stale(connection):
                break
            connection.close()  # dead since it was last used: the pool replaces it
            pool.putconn(connection)
        try:
            yield connection
        finally:
            pool.putconn(connection)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], *, retry: bool = False) -> T:
        """Run ``work`` on a pooled connection within the store's timeout.

        If the connection dies under it and ``retry`` is true (the statement is
        safe to send twice, see ``_SQL.retryable``), once more on a fresh one.
        """
        deadline = time.monotonic() + self._timeout
        for attempt in (1, 2):
            try:
                with self._connection(deadline) as connection:
                    token = _WATCHDOG.arm(deadline, connection)
                    try:
                        result = work(connection)
                    except psycopg.OperationalError as exc:
                        if _WATCHDOG.disarm(token):
                            raise _late(self._timeout) from exc
                        if retry and attempt == 1 and connection.broken:
                            continue
                        raise
                    finally:
                        cut = _WATCHDOG.disarm(token)
                    if cut:  # the answer came as the deadline passed: keep it, not the connection
                        connection.close()
                    return result
            except (psycopg.Error, PoolTimeout) as exc:
                raise _failed(exc, self.table) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def migrate(self) -> None:
        """Create the table and its indexes if they do not exist (see :func:`migration_sql`)."""
        self._run(lambda connection: connection.execute(migration_sql(self.table)), retry=True)

    def load(self, key: str) -> tuple[bytes, int] | None:
        row = self._run(lambda c: c.execute(self._sql.load, (key,)).fetchone(), retry=True)
        return None if row is None else (bytes(row[0]), int(row[1]))

    def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        statement, parameters = self._sql.save(key, data, ttl, version, user)
        retry = statement in self._sql.retryable
        return self._run(lambda c: c.execute(statement, parameters).rowcount == 1, retry=retry)

    def delete(self, key: str) -> bool:
        rows = self._run(lambda c: c.execute(self._sql.delete, (key,)).fetchall())
        return bool(rows and rows[0][0])

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        rows = self._run(lambda c: c.execute(self._sql.user, (user,)).fetchall(), retry=True)
        return [(key, bytes(data)) for key, data in rows]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        rows = self._run(lambda c: c.execute(self._sql.delete_user, (user, keep)).fetchall())
        return sum(1 for (live,) in rows if live)

    def purge_expired(self) -> int:
        """Delete expired rows, in batches; return how many."""
        total = 0
        while True:
            deleted = self._run(lambda c: c.execute(self._sql.purge).rowcount, retry=True)
            total += deleted
            if deleted < _PURGE_BATCH:
                return total

    def close(self) -> None:
        """Close the synchronous pool."""
        if self._pool is not None and self._opened:
            self._pool.close()
            self._opened = False


class _AsyncPool:
    """A small pool of autocommit connections for one event loop.

    Unlike ``psycopg_pool.AsyncConnectionPool`` it runs no background tasks,
    so it lives and dies with its event loop (an app's loop, or the short ones
    test clients start per request) and is closed cleanly at loop shutdown.
    Connections are made on demand, at most ``max_size`` at once, and a broken
    one is dropped instead of being lent again.
    """

    def __init__(self, conninfo: str, settings: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._kwargs = settings["kwargs"]
        self._timeout = settings["timeout"]
        self._slots = asyncio.Semaphore(settings["max_size"])
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A live connection, waiting ``timeout`` seconds at most (the pool's own by default)."""
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        if self._slots.locked():  # every slot taken: wait, but not past the deadline
            try:
                await asyncio.wait_for(self._slots.acquire(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise PoolTimeout(f"no connection free within {self._timeout} s") from None
        else:
            await self._slots.acquire()  # free: no task, no timer
        connection: psycopg.AsyncConnection[Any] | None = None
        try:
            while self._idle:
                connection = self._idle.pop()
                if not _stale(connection):
                    break
                await connection.close()  # dead since it was last used (a restart)
                connection = None
            if connection is None:
                connection = await self._connect(deadline)
            yield connection
        finally:
            if connection is not None:
                if connection.broken or connection.info.transaction_status != TransactionStatus.IDLE:
                    await connection.close()
                else:
                    self._idle.append(connection)
            self._slots.release()

    async def _connect(self, deadline: float) -> psycopg.AsyncConnection[Any]:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        except TimeoutError:
            raise PoolTimeout(f"could not connect within {self._timeout} s") from None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class _AsyncPostgresStore:
    """The asyncio face of a :class:`PostgresStore` (same table, same statements)."""

    def __init__(
        self,
        sql: _SQL,
        table: str,
        conninfo: str | None,
        pool: AsyncConnectionPool | None,
        settings: dict[str, Any],
    ) -> None:
        self._sql = sql
        self.table = table
        self._timeout: float = settings["timeout"]
        self._given = pool
        self._pools: PerLoop[_AsyncPool] | None = None
        if pool is None and conninfo is not None:

            def create() -> _AsyncPool:
                return _AsyncPool(conninfo, settings)

            async def close(pool: _AsyncPool) -> None:
                await pool.close()

            self._pools = PerLoop(create, close)

    async def _pool(self) -> AsyncConnectionPool | _AsyncPool:
        if self._given is not None:
            if self._given.closed:
                await self._given.open(wait=False)
            return self._given
        if self._pools is None:
            raise ConfigurationError(
                "PostgresStore was given only a synchronous pool; pass conninfo= or async_pool= "
                "to use it under ASGI"
            )
        return await self._pools.get()

    async def _run(self, statement: str, parameters: tuple[Any, ...]) -> tuple[int, list[Any]]:
        """Execute within the store's timeout; ``(rowcount, rows)``.

        Once more on a fresh connection if the first died under a statement
        that is safe to send twice (``_SQL.retryable``).
        """
        deadline = time.monotonic() + self._timeout
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout(f"no connection within {self._timeout} s")
                async with (await self._pool()).connection(timeout=remaining) as connection:
                    cutter = _Cutter(connection)
                    watchdog = loop.call_later(max(0.0, deadline - time.monotonic()), cutter)
                    try:
                        cursor = await connection.execute(statement, parameters)
                        rows = await cursor.fetchall() if cursor.description is not None else []
                        return cursor.rowcount, rows
                    except psycopg.OperationalError as exc:
                        if cutter.fired:
                            raise _late(self._timeout) from exc
                        if attempt == 1 and connection.broken and statement in self._sql.retryable:
                            continue
                        raise
                    finally:
                        watchdog.cancel()
            except (psycopg.Error, PoolTimeout) as exc:
                raise _failed(exc, self.table) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def load(self, key: str) -> tuple[bytes, int] | None:
        _, rows = await self._run(self._sql.load, (key,))
        return (bytes(rows[0][0]), int(rows[0][1])) if rows else None

    async def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        count, _ = await self._run(*self._sql.save(key, data, ttl, version, user))
        return count == 1

    async def delete(self, key: str) -> bool:
        _, rows = await self._run(self._sql.delete, (key,))
        return bool(rows and rows[0][0])

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        _, rows = await self._run(self._sql.user, (user,))
        return [(key, bytes(data)) for key, data in rows]

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        _, rows = await self._run(self._sql.delete_user, (user, keep))
        return sum(1 for (live,) in rows if live)

    async def aclose(self) -> None:
        """Close this event loop's pool (a new one is made if the store is used again)."""
        if self._pools is not None:
            await self._pools.aclose()
