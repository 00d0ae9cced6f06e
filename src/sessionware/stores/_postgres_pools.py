"""The PostgreSQL store's connections: small pools that connect on demand, and deadlines.

Nothing here runs in the background but the watchdog thread that cuts a
connection whose call outlived its deadline: a pool connects when a call needs
a connection, within that call's deadline, so after an outage the next call
connects at once (no reconnect backoff to wait out), and a database that is
down fails a call fast with :class:`~sessionware.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import select
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from ..errors import ConfigurationError, StoreUnavailable

logger = logging.getLogger("sessionware")
T = TypeVar("T")
Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]


def where_of(conninfo: str) -> str:
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


def options_of(conninfo: str | None) -> str | None:
    """The server options (``-c name=value ...``) the conninfo sets itself."""
    options = None if conninfo is None else conninfo_to_dict(conninfo).get("options")
    return None if options is None else str(options)


def cause_of(exc: BaseException) -> str:
    """A libpq error in one line: ``Connection refused``, not three lines of hints."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return " ".join(lines[0].rpartition("failed: ")[2].split())


class Server:
    """Where the store connects, for messages; logs one line when it cannot, one when it can again."""

    def __init__(self, conninfo: str | None) -> None:
        self.where = "the pool's database" if conninfo is None else where_of(conninfo)
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


def late(where: str, timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: no answer from {where} within {timeout} s")


def no_slot(max_size: int, timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: no connection free within {timeout} s (all {max_size} in use)")


def pool_gave_none(timeout: float) -> StoreUnavailable:
    return StoreUnavailable(f"PostgresStore: the pool passed in gave no connection within {timeout} s")


def stale(connection: Connection | AsyncConnection) -> bool:
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


def reusable(connection: Connection | AsyncConnection) -> bool:
    """Whether a connection handed back may be lent again: open and outside any transaction."""
    return connection.info.transaction_status == TransactionStatus.IDLE  # UNKNOWN once closed or broken


def cut(connection: Connection | AsyncConnection) -> None:
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


class Cutter:
    """``loop.call_later(delay, Cutter(connection))``: cut it, and remember having done so."""

    __slots__ = ("connection", "fired")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        cut(self.connection)


class Watchdog:
    """One daemon thread that cuts (:func:`cut`) connections whose call outlived its deadline.

    The synchronous face cannot time out a blocked psycopg call from the calling
    thread, so this thread does it; the asyncio face uses ``loop.call_later``.
    The thread is woken only for a deadline earlier than the next time it looks
    anyway: under steady traffic about once per timeout, not on every call (a
    wake-up per call cost more than the pool and the statement's own Python).
    """

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, Connection]] = {}
        self._fired: set[int] = set()
        self._tokens = 0
        self._reset()

    def _reset(self) -> None:
        """A fresh lock and no thread (also in a forked child, where the lock may be held)."""
        self._wake = threading.Condition()
        self._pid = 0
        self._looks_at = math.inf  # when the thread next looks at the deadlines

    def arm(self, deadline: float, connection: Connection) -> int:
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
                    cut(self._armed.pop(token)[1])
                self._fired.update(due)
                if not due:
                    # Keep a time promised to arm() even if that call is over: until
                    # then, calls with later deadlines need not wake the thread.
                    promised = self._looks_at if self._looks_at > now else math.inf
                    self._looks_at = min([promised, *(deadline for deadline, _ in self._armed.values())])
                    self._wake.wait(None if self._looks_at == math.inf else self._looks_at - now)


class Pool:
    """A small thread-safe pool of autocommit connections, for the synchronous face.

    Nothing runs in the background, so nothing retries on a schedule of its
    own: a call takes an idle connection (dropping dead ones, see
    :func:`stale`) or, when there is none, makes one there and then, waiting
    until its own deadline at most. A refused connection fails the call at
    once, and the first call after the server is back connects. The attempt runs on a short-lived
    thread, so the call can give up at its deadline (libpq's connect_timeout is
    2 s at least); an attempt given up on keeps its place until it ends, and a
    connection it makes is kept for the next call. Connections in use or being
    made are ``max_size`` at most.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, server: Server) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_size = max_size
        self._server = server
        self._idle: list[Connection] = []
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
    def connection(self, deadline: float, timeout: float) -> Iterator[Connection]:
        """A live connection, waiting until ``deadline`` at most (``timeout`` is for messages)."""
        if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise no_slot(self._max_size, timeout)
        connection = self._take()
        if connection is None:
            connection = self._connect(deadline, timeout)  # frees the slot itself if it fails
        try:
            yield connection
        finally:
            self._give_back(connection)

    def _take(self) -> Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if not stale(connection):
                return connection
            connection.close()  # dead since it was last used (a restart)

    def _connect(self, deadline: float, timeout: float) -> Connection:
        attempt: Future[Connection] = Future()
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
                raise self._server.unreachable(cause_of(exc)) from exc
            raise
        self._server.reached()
        return connection

    def _attempt(self, attempt: Future[Connection]) -> None:
        try:
            attempt.set_result(psycopg.Connection.connect(self._conninfo, **self._kwargs))
        except BaseException as exc:
            attempt.set_exception(exc)

    def _adopt(self, attempt: Future[Connection]) -> None:
        """An attempt its call gave up on has ended: free its slot, keep its connection if any."""
        if attempt.exception() is None:
            self._server.reached()
            self._give_back(attempt.result())
        else:
            self._slots.release()

    def _give_back(self, connection: Connection) -> None:
        try:
            if reusable(connection):
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


class GivenPool:
    """A ``psycopg_pool.ConnectionPool`` passed in, behind :class:`Pool`'s interface.

    Used as it is (its reconnects and logging are psycopg_pool's), except that
    dead idle connections are dropped before use.
    """

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    @contextmanager
    def connection(self, deadline: float, timeout: float) -> Iterator[Connection]:
        if self.pool.closed:
            self.pool.open(wait=False)
        try:
            while True:
                connection = self.pool.getconn(timeout=deadline - time.monotonic())
                if not stale(connection):
                    break
                connection.close()  # the pool replaces it
                self.pool.putconn(connection)
        except PoolTimeout:
            raise pool_gave_none(timeout) from None
        try:
            yield connection
        finally:
            self.pool.putconn(connection)


class AsyncPool:
    """:class:`Pool` for one event loop: autocommit connections made on demand, nothing in the background.

    asyncio connections belong to their loop (an app's, or the short ones test
    clients start per request), so each loop gets its own (see
    :class:`~._loops.PerLoop`), closed at that loop's shutdown. The connection
    attempt is cancelled at the call's deadline.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, server: Server) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_size = max_size
        self._server = server
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[AsyncConnection] = []

    @asynccontextmanager
    async def connection(self, deadline: float, timeout: float) -> AsyncIterator[AsyncConnection]:
        """A live connection, waiting until ``deadline`` at most (``timeout`` is for messages)."""
        if self._slots.locked():  # every slot taken: wait, but not past the deadline
            try:
                await asyncio.wait_for(self._slots.acquire(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise no_slot(self._max_size, timeout) from None
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
                if reusable(connection):
                    self._idle.append(connection)
                else:
                    await connection.close()
            finally:
                self._slots.release()

    async def _take(self) -> AsyncConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if not stale(connection):
                return connection
            await connection.close()  # dead since it was last used (a restart)
        return None

    async def _connect(self, deadline: float, timeout: float) -> AsyncConnection:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                connection = await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        except TimeoutError:
            raise self._server.unreachable(f"no answer within {timeout} s") from None
        except psycopg.Error as exc:
            raise self._server.unreachable(cause_of(exc)) from exc
        self._server.reached()
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class GivenAsyncPool:
    """:class:`GivenPool` for a ``psycopg_pool.AsyncConnectionPool`` passed in."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self, deadline: float, timeout: float) -> AsyncIterator[AsyncConnection]:
        if self.pool.closed:
            await self.pool.open(wait=False)
        try:
            while True:
                connection = await self.pool.getconn(timeout=deadline - time.monotonic())
                if not stale(connection):
                    break
                await connection.close()  # the pool replaces it
                await self.pool.putconn(connection)
        except PoolTimeout:
            raise pool_gave_none(timeout) from None
        try:
            yield connection
        finally:
            await self.pool.putconn(connection)


WATCHDOG = Watchdog()
#: What must start afresh in a forked child: locks another thread may hold, and connections.
_AFTER_FORK: weakref.WeakSet[Watchdog | Server | Pool] = weakref.WeakSet([WATCHDOG])
#: In a forked child: the parent's idle connections, never used nor closed (see Pool._reset).
_INHERITED: list[Connection] = []


def _reset_after_fork() -> None:
    for each in list(_AFTER_FORK):
        each._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
