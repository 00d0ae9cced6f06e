"""The PostgreSQL store: shared sessions in the database the app already runs."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import select
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from ..errors import ConfigurationError, MissingDependency, StoreBusy, StoreError, StoreUnavailable
from ..typing import Change, StoredRecord
from ._loops import PerLoop

try:
    import psycopg
    import psycopg.errors
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.pq import TransactionStatus
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependency("psycopg", extra="postgres") from exc

__all__ = ["PostgresStore", "migration_sql"]

logger = logging.getLogger("sessionware")
T = TypeVar("T")
_Connection = psycopg.Connection[Any]
_AsyncConnection = psycopg.AsyncConnection[Any]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_PURGE_BATCH = 10_000
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
        self.purge = (
            f"DELETE FROM {table} WHERE key IN "
            f"(SELECT key FROM {table} WHERE expires_at <= now() LIMIT {_PURGE_BATCH})"
        )
        self.columns = (
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        )
        # Statements sent again on a fresh connection if the first one died under
        # them (rare: dead idle connections are dropped before use, see _stale).
        # Reads; the update (the same change applied again gives the same row);
        # the insert (its key is new: nobody else knows it yet, so nothing can
        # have changed or deleted it in between). Never the DELETEs: a repeat
        # finds nothing and would report a log-out or revocation as not done.
        self.resendable = frozenset({self.load, self.create, self.update, self.user, self.purge})


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


def _where(conninfo: str) -> str:
    """``conninfo`` as ``postgresql://user@host:port/dbname``, without its password, for messages."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"PostgresStore expects conninfo to be a libpq connection string or URL: {exc}"
        ) from None
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or params.get("hostaddr") or ""  # none: the default Unix socket
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or ''}"


def _options(conninfo: str | None) -> str | None:
    """The server options (``-c name=value ...``) the conninfo sets itself."""
    options = None if conninfo is None else conninfo_to_dict(conninfo).get("options")
    return None if options is None else str(options)


def _cause(exc: BaseException) -> str:
    """A libpq error in one line: ``Connection refused``, not three lines of hints."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return " ".join(lines[0].rpartition("failed: ")[2].split())


def _wrong_layout(table: str) -> StoreError:
    return StoreError(
        f"PostgresStore: the table {table!r} does not have the columns this sessionware needs "
        f"({', '.join(f'{name} {kind}' for name, kind in _LAYOUT.items())}). A table with `data bytea` "
        "and `version` columns is the layout of sessionware before its v2 store contract, whose "
        "sessions cannot be read: rename it (ALTER TABLE ... RENAME TO ...) or drop it, which logs "
        "every user out, then create the table with `python -m sessionware migrate --store "
        "postgresql://...` (or the SQL from --print-sql)"
    )


class _Server:
    """Where the store connects, for messages; logs one line when it cannot, one when it can again."""

    def __init__(self, conninfo: str | None) -> None:
        self.where = "the pool's database" if conninfo is None else _where(conninfo)
        self._down = False
        _AFTER_FORK.add(self)
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()

    def unreachable(self, cause: str) -> StoreUnavailable:
        """The error for a failed connection attempt; the first of an outage is logged."""
        message = f"PostgresStore: cannot connect to {self.where}: {cause}"
        with self._lock:
            first, self._down = not self._down, True
        if first:
            logger.warning("%s", message)
        return StoreUnavailable(message)

    def reached(self) -> None:
        """A connection attempt succeeded."""
        if self._down:
            with self._lock:
                again, self._down = self._down, False
            if again:
                logger.info("PostgresStore: connected to %s again", self.where)


def _failed(
    exc: psycopg.Error, table: str, where: str, connection: _Connection | _AsyncConnection
) -> StoreError:
    """The sessionware error for what a statement raised."""
    if connection.broken:
        return StoreUnavailable(f"PostgresStore: lost the connection to {where}: {_cause(exc)}")
    if isinstance(exc, _BUSY):
        return StoreBusy(f"PostgresStore: a lock on the table {table!r} stayed held too long: {_cause(exc)}")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StoreError(
            f"PostgresStore: the table {table!r} does not exist; create it with "
            "`python -m sessionware migrate --store postgresql://...` (or run the SQL from --print-sql)"
        )
    # The statements use built-in functions and operators only: one "missing" is
    # a column of another type (`data bytea || jsonb`, in the old layout).
    if isinstance(exc, psycopg.errors.UndefinedColumn | psycopg.errors.UndefinedFunction):
        return _wrong_layout(table)
    return StoreError(f"PostgresStore: the statement on the table {table!r} failed: {_cause(exc)}")


def _late(where: str, timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: no answer from {where} within {timeout} s")


def _no_slot(max_size: int, timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: no connection free within {timeout} s (all {max_size} in use)")


def _pool_gave_none(timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: the pool passed in gave no connection within {timeout} s")


def _stale(connection: _Connection | _AsyncConnection) -> bool:
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


def _reusable(connection: _Connection | _AsyncConnection) -> bool:
    """Whether a connection handed back may be lent again: open and outside any transaction."""
    return connection.info.transaction_status == TransactionStatus.IDLE  # UNKNOWN once closed or broken


def _cut(connection: _Connection | _AsyncConnection) -> None:
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

    def __init__(self, connection: _AsyncConnection) -> None:
        self.connection = connection
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        _cut(self.connection)


class _Watchdog:
    """One daemon thread that cuts (:func:`_cut`) connections whose call outlived its deadline.

    The synchronous face cannot time out a blocked psycopg call from the calling
    thread, so this thread does it; the asyncio face uses ``loop.call_later``.
    The thread is woken only for a deadline earlier than the next time it looks
    anyway: under steady traffic about once per timeout, not on every call (a
    wake-up per call cost more than the pool and the statement's own Python).
    """

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, _Connection]] = {}
        self._fired: set[int] = set()
        self._tokens = 0
        self._reset()

    def _reset(self) -> None:
        """A fresh lock and no thread (also in a forked child, where the lock may be held)."""
        self._wake = threading.Condition()
        self._pid = 0
        self._looks_at = math.inf  # when the thread next looks at the deadlines

    def arm(self, deadline: float, connection: _Connection) -> int:
        with self._wake:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._armed.clear()
                self._fired.clear()
                threading.Thread(target=self._watch, name="sessionware-pg-watchdog", daemon=True).start()
            self._tokens += 1
            self._armed[self._tokens] = (deadline, connection)
            if deadline < self._looks_at:  # else the thread looks early enough
                self._looks_at = deadline
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
                    # Keep a time promised to arm() even if that call is over: until
                    # then, calls with later deadlines need not wake the thread.
                    promised = self._looks_at if self._looks_at > now else math.inf
                    self._looks_at = min([promised, *(deadline for deadline, _ in self._armed.values())])
                    self._wake.wait(None if self._looks_at == math.inf else self._looks_at - now)


class _Pool:
    """A small thread-safe pool of autocommit connections, for the synchronous face.

    Nothing runs in the background, so nothing retries on a schedule of its
    own: a call takes an idle connection (dropping dead ones, see
    :func:`_stale`) or, when there is none, makes one there and then, waiting
    until its own deadline at most. A refused connection fails the call at
    once, and the first call after the server is back connects. The attempt runs on a short-lived
    thread, so the call can give up at its deadline (libpq's connect_timeout is
    2 s at least); an attempt given up on keeps its place until it ends, and a
    connection it makes is kept for the next call. Connections in use or being
    made are ``max_size`` at most.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, server: _Server) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_size = max_size
        self._server = server
        self._idle: list[_Connection] = []
        _AFTER_FORK.add(self)
        self._reset()

    def _reset(self) -> None:
        """No connections and fresh locks (also in a forked child, where another thread may hold one).

        A child keeps the parent's idle connections but never uses them:
        closing one would end the parent's session on the server, and psycopg
        warns about one garbage-collected while open.
        """
        _INHERITED.extend(self._idle)
        self._idle = []
        self._slots = threading.BoundedSemaphore(self._max_size)
        self._lock = threading.Lock()

    @contextmanager
    def connection(self, deadline: float, timeout: float) -> Iterator[_Connection]:
        """A live connection, waiting until ``deadline`` at most (``timeout`` is for messages)."""
        if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _no_slot(self._max_size, timeout)
        connection = self._take()
        if connection is None:
            connection = self._connect(deadline, timeout)  # frees the slot itself if it fails
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _take(self) -> _Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if not _stale(connection):
                return connection
            connection.close()  # dead since it was last used (a restart)

    def _connect(self, deadline: float, timeout: float) -> _Connection:
        attempt: Future[_Connection] = Future()
        thread = threading.Thread(target=self._attempt, args=(attempt,), name="sessionware-pg-connect")
        thread.daemon = True
        try:
            thread.start()
        except BaseException:
            self._slots.release()
            raise
        try:
            connection = attempt.result(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException as exc:
            # Frees the slot when the attempt ends (now, if it failed), keeping what it made.
            attempt.add_done_callback(self._adopt)
            if isinstance(exc, TimeoutError):
                raise self._server.unreachable(f"no answer within {timeout} s") from None
            if isinstance(exc, psycopg.Error):
                raise self._server.unreachable(_cause(exc)) from exc
            raise
        self._server.reached()
        return connection

    def _attempt(self, attempt: Future[_Connection]) -> None:
        try:
            attempt.set_result(psycopg.Connection.connect(self._conninfo, **self._kwargs))
        except BaseException as exc:
            attempt.set_exception(exc)

    def _adopt(self, attempt: Future[_Connection]) -> None:
        """An attempt its call gave up on has ended: free its slot, keep its connection if any."""
        if attempt.exception() is None:
            self._server.reached()
            self._give_back(attempt.result())
        else:
            self._slots.release()

    def _give_back(self, connection: _Connection) -> None:
        try:
            if _reusable(connection):
                with self._lock:
                    self._idle.append(connection)
            else:
                connection.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections (the pool stays usable: it connects again on demand)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _GivenPool:
    """A ``psycopg_pool.ConnectionPool`` passed in, behind :class:`_Pool`'s interface.

    Used as it is (its reconnects and logging are psycopg_pool's), except that
    dead idle connections are dropped before use.
    """

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    @contextmanager
    def connection(self, deadline: float, timeout: float) -> Iterator[_Connection]:
        if self.pool.closed:
            self.pool.open(wait=False)
        try:
            while True:
                connection = self.pool.getconn(timeout=deadline - time.monotonic())
                if not _stale(connection):
                    break
                connection.close()  # the pool replaces it
                self.pool.putconn(connection)
        except PoolTimeout:
            raise _pool_gave_none(timeout) from None
        try:
            yield connection
        finally:
            self.pool.putconn(connection)


class _AsyncPool:
    """:class:`_Pool` for one event loop: autocommit connections made on demand, nothing in the background.

    asyncio connections belong to their loop (an app's, or the short ones test
    clients start per request), so each loop gets its own (see
    :class:`~._loops.PerLoop`), closed at that loop's shutdown. The connection
    attempt is cancelled at the call's deadline.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, server: _Server) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_size = max_size
        self._server = server
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[_AsyncConnection] = []

    @asynccontextmanager
    async def connection(self, deadline: float, timeout: float) -> AsyncIterator[_AsyncConnection]:
        """A live connection, waiting until ``deadline`` at most (``timeout`` is for messages)."""
        if self._slots.locked():  # every slot taken: wait, but not past the deadline
            try:
                await asyncio.wait_for(self._slots.acquire(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise _no_slot(self._max_size, timeout) from None
        else:
            await self._slots.acquire()  # free: no task, no timer
        try:
            connection = await self._take() or await self._connect(deadline, timeout)
        except BaseException:
            self._slots.release()
            raise
        try:
            yield connection
        finally:
            try:
                if _reusable(connection):
                    self._idle.append(connection)
                else:
                    await connection.close()
            finally:
                self._slots.release()

    async def _take(self) -> _AsyncConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if not _stale(connection):
                return connection
            await connection.close()  # dead since it was last used (a restart)
        return None

    async def _connect(self, deadline: float, timeout: float) -> _AsyncConnection:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                connection = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        except TimeoutError:
            raise self._server.unreachable(f"no answer within {timeout} s") from None
        except psycopg.Error as exc:
            raise self._server.unreachable(_cause(exc)) from exc
        self._server.reached()
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class _GivenAsyncPool:
    """:class:`_GivenPool` for a ``psycopg_pool.AsyncConnectionPool`` passed in."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self, deadline: float, timeout: float) -> AsyncIterator[_AsyncConnection]:
        if self.pool.closed:
            await self.pool.open(wait=False)
        try:
            while True:
                connection = await self.pool.getconn(timeout=deadline - time.monotonic())
                if not _stale(connection):
                    break
                await connection.close()  # the pool replaces it
                await self.pool.putconn(connection)
        except PoolTimeout:
            raise _pool_gave_none(timeout) from None
        try:
            yield connection
        finally:
            await self.pool.putconn(connection)


_WATCHDOG = _Watchdog()
#: What must start afresh in a forked child: locks another thread may hold, and connections.
_AFTER_FORK: weakref.WeakSet[_Watchdog | _Server | _Pool] = weakref.WeakSet([_WATCHDOG])
#: In a forked child: the parent's idle connections, never used nor closed (see _Pool._reset).
_INHERITED: list[_Connection] = []


def _reset_after_fork() -> None:
    for each in list(_AFTER_FORK):
        each._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


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
        self._server = _Server(
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
                filter(None, [_options(conninfo), f"-c statement_timeout={max(1, int(timeout * 900))}"])
            ),
        }
        self._pool: _Pool | _GivenPool | None = None
        if pool is not None:
            self._pool = _GivenPool(pool)
        elif conninfo is not None:
            self._pool = _Pool(conninfo, kwargs, max_size, self._server)
        self._async = _AsyncPostgresStore(self, kwargs, max_size, async_pool)

    def __repr__(self) -> str:
        return f"PostgresStore(table={self.table!r})"

    def asyncio(self) -> _AsyncPostgresStore:
        """The asyncio face the ASGI middleware uses."""
        return self._async

    def _run(self, work: Callable[[_Connection], T], *, resend: bool = False) -> T:
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
                token = _WATCHDOG.arm(deadline, connection)
                try:
                    result = work(connection)
                except psycopg.Error as exc:
                    if _WATCHDOG.disarm(token):
                        raise _late(self._server.where, self._timeout) from exc
                    if not (resend and connection.broken):
                        raise _failed(exc, self.table, self._server.where, connection) from exc
                    resend = False
                    continue
                finally:
                    cut = _WATCHDOG.disarm(token)
                if cut:  # the answer came as the deadline passed: keep it, not the connection
                    connection.close()
                return result

    def _execute(self, statement: str, parameters: tuple[Any, ...]) -> tuple[int, list[Any]]:
        """One statement: ``(rowcount, rows)``."""

        def work(connection: _Connection) -> tuple[int, list[Any]]:
            cursor = connection.execute(statement, parameters)
            return cursor.rowcount, cursor.fetchall() if cursor.description is not None else []

        return self._run(work, resend=statement in self._sql.resendable)

    def migrate(self) -> None:
        """Create the table and its indexes if they do not exist (see :func:`migration_sql`).

        Raises :class:`~sessionware.StoreError` if a table of that name exists
        with other columns (such as sessionware's old layout), saying what to do.
        """

        def work(connection: _Connection) -> dict[str, str]:
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
        if isinstance(self._pool, _Pool):
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
        self._given = None if given is None else _GivenAsyncPool(given)
        self._pools: PerLoop[_AsyncPool] | None = None
        conninfo = store.conninfo
        if given is None and conninfo is not None:

            def create() -> _AsyncPool:
                return _AsyncPool(conninfo, kwargs, max_size, store._server)

            async def close(pool: _AsyncPool) -> None:
                await pool.close()

            self._pools = PerLoop(create, close)

    async def _pool(self) -> _AsyncPool | _GivenAsyncPool:
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
                cutter = _Cutter(connection)
                watchdog = loop.call_later(max(0.0, deadline - time.monotonic()), cutter)
                try:
                    cursor = await connection.execute(statement, parameters)
                    rows = await cursor.fetchall() if cursor.description is not None else []
                except psycopg.Error as exc:
                    if cutter.fired:
                        raise _late(self._server.where, self._timeout) from exc
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
