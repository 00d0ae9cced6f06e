"""The Redis store: shared sessions for many app servers, standalone or Cluster."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .._arguments import CheckedArguments
from ..errors import ConfigurationError, MissingDependency, StoreBusy, StoreError, StoreUnavailable
from ..typing import Change, StoredRecord
from ._loops import PerLoop
from ._redis_scripts import (
    CREATE_SCRIPT,
    DELETE_ALL_SCRIPT,
    DELETE_SCRIPT,
    HEAD,
    LIST_SCRIPT,
    UPDATE_SCRIPT,
    USER,
    Keys,
    Script,
    split,
)

try:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.retry
    import redis.backoff
    import redis.cluster
    import redis.retry
    from redis.exceptions import (
        AuthenticationError,
        AuthorizationError,
        ClusterDownError,
        NoScriptError,
        RedisClusterException,
        RedisError,
        ResponseError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependency("redis", extra="redis") from exc

if TYPE_CHECKING:
    SyncClient = redis.Redis | redis.cluster.RedisCluster
    AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

__all__ = ["RedisStore"]

T = TypeVar("T")

#: What the clients raise: redis-py's errors, and its Cluster client's own (not RedisErrors).
_ERRORS = (RedisError, RedisClusterException)


def _call_id() -> str:
    return secrets.token_hex(8)


def _record(reply: Any) -> StoredRecord | None:
    """A record from an HGETALL reply (a dict in RESP3, redis-py's default; a flat list in RESP2).

    None if the hash has no head: no session, or one in an older layout.
    """
    if isinstance(reply, dict):
        entries = reply
    else:
        flat = iter(reply)
        entries = dict(zip(flat, flat, strict=True))
    head = entries.pop(HEAD, None)
    if head is None:
        return None
    entries.pop(USER, None)
    # Names and values are ASCII; latin-1 turns any byte into a character, so a damaged
    # entry reaches the engine (which refuses it) instead of failing the call.
    return head, {name.decode("latin-1"): value.decode("latin-1") for name, value in entries.items()}


def _pairs(flat: list[bytes]) -> list[tuple[str, bytes]]:
    return [(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _failed(store: str, exc: Exception) -> StoreError:
    """The sessionware error for what a Redis client raised, naming the store and the cause."""
    if isinstance(exc, RedisClusterException):
        # The Cluster client's slot discovery failed: it chains what the node said.
        for cause in _causes(exc):
            if isinstance(cause, ResponseError):
                return StoreError(
                    f"{store}: the server is not a Redis Cluster (it answered CLUSTER SLOTS with "
                    f"{str(cause)!r}); for a standalone Redis use its redis:// URL without cluster=True"
                )
            if isinstance(cause, RedisConnectionError | RedisTimeoutError):
                return StoreUnavailable(f"{store}: cannot reach the Redis Cluster: {cause}")
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return StoreError(f"{store}: Redis refused the credentials: {exc}")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | ClusterDownError):
        return StoreUnavailable(f"{store}: cannot reach Redis: {exc}")
    if isinstance(exc, ResponseError) and str(exc).startswith("BUSY "):
        return StoreBusy(f"{store}: Redis is busy running a script: {exc}")
    return StoreError(f"{store}: Redis failed: {exc}")


def _glob(text: str) -> str:
    """``text`` as a Redis glob pattern that matches only itself."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _shown(url: str) -> str:
    """``url`` with its password masked, for reprs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class RedisStore(CheckedArguments):
    """Keep sessions in Redis, standalone or Cluster: for apps on many machines.

    Each session is a Redis hash with a native TTL (``PEXPIRE``): one hash
    field per session key, plus two reserved fields whose names start with a
    NUL byte, the head (the session's times and log-in state) and the key of
    the user registry the session is filed under. Each logged-in user has a
    registry, a sorted set of their sessions scored by expiry. Keys are
    ``<prefix>{<group>}:s:<hash>`` and ``<prefix>{<group>}:u:<user>``: a user's
    sessions and registry share the ``{group}`` hash tag, so on a Cluster they
    live in one slot and every operation is a single-slot script.

    A request that only reads its session costs exactly one Redis command
    (``HGETALL``). A write is one round trip too: one ``EVALSHA`` of a Lua
    script that applies the request's changes to the hash *as it is now* --
    the head, the fields it set, the fields it removed, the new TTL -- and
    files the session in its user's registry, atomically. Concurrent requests
    that change different keys of one session all keep their change; the
    same key ends with the last writer's value; a session that was deleted
    (log-out, renewal, revocation) is never written back. A hash without a
    head (such as one an older sessionware wrote) loads as no session, and
    an update leaves it as it is. The script reads the server's clock (to
    score the registry) only for a logged-in session, and writes thousands
    of fields as readily as one. Deleting a session, listing a user's
    sessions and revoking them all are one script each as well. A script
    that Redis no longer has (after a restart or ``SCRIPT FLUSH``) is sent
    whole once, on the same connection, and called by its SHA1 again from
    then on.

    Under ASGI the middleware uses the asyncio client (one pool per event
    loop); WSGI apps and the CLI use the synchronous one. Both come from the
    same settings, and neither does any I/O until its first call: an app can
    start while Redis is down. Failures raise
    :class:`~sessionware.StoreUnavailable` (connection refused or lost, no
    answer within ``timeout``, Redis still loading its data, a Cluster that is
    down), :class:`~sessionware.StoreBusy` (Redis answered ``BUSY``: someone
    else's script has run past Redis's busy threshold) or
    :class:`~sessionware.StoreError` (anything else: wrong credentials,
    ``cluster=True`` pointed at a standalone Redis, ...), each naming the
    store and the cause; the middleware answers them with a 503. Once Redis
    is back (restarted on the same address), the next call succeeds: no
    restart of the app.

    Options:
        url: ``redis://[:password@]host:port/db`` or ``rediss://...`` for TLS.
            For a Cluster, the URL of any node with ``cluster=True``.
        client: An existing ``redis.Redis`` / ``redis.cluster.RedisCluster``
            (used for WSGI and the CLI) instead of ``url``.
        async_client: An existing ``redis.asyncio.Redis`` / ``RedisCluster``
            (used under ASGI, in the loop it was made in) instead of ``url``.
        cluster: Connect to a Redis Cluster. Defaults to ``False``.
        prefix: Prepended to every key. Defaults to ``"sw:"``.
        timeout: Seconds to wait for a connection or a reply before failing.
            Defaults to 2. Under ASGI it bounds each call as a whole; the
            synchronous client (WSGI, the CLI) applies it to each step (the
            wait for a pooled connection, each reply, the one retry), so a
            synchronous call can take up to about three times as long.
        max_connections: Connections per pool (per node on a Cluster).
            Defaults to 50. The pools block: a burst of more concurrent calls
            waits (up to ``timeout``) for a connection to come back rather
            than failing with "Too many connections". Under ASGI, at most this
            many calls run at once per event loop.

    A command whose connection fails is sent once more on a fresh connection
    (Redis restarted). That may repeat a command the server did run, its reply
    lost: reads, creates and updates are safe to repeat (an update sets the
    same values again), and deletes carry a call ID and leave a receipt for a
    minute, so a repeated delete reports what the first attempt did instead of
    "nothing was there" (on a Cluster, a failover before the receipt reached
    the replica loses it: the repeat then reports "not there", and a
    revocation says it revoked less). A call that times out raises
    :class:`~sessionware.StoreUnavailable`, which means "not known to be
    done": the command may still have run.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=RedisStore("redis://127.0.0.1:6379/0"))
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: SyncClient | None = None,
        async_client: AsyncClient | None = None,
        cluster: bool = False,
        prefix: str = "sw:",
        timeout: float = 2.0,
        max_connections: int = 50,
    ) -> None:
        if url is None and client is None and async_client is None:
            raise ConfigurationError(
                "RedisStore expects a url such as 'redis://127.0.0.1:6379/0' or a client"
            )
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"RedisStore expects a redis://, rediss:// or unix:// url, got {url!r}")
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"RedisStore expects prefix to be a str without braces, got {prefix!r}")
        if not timeout > 0:
            raise ConfigurationError(f"RedisStore expects timeout to be positive seconds, got {timeout!r}")
        if type(max_connections) is not int or max_connections < 1:
            raise ConfigurationError(f"RedisStore expects max_connections >= 1, got {max_connections!r}")
        self.url = url
        self.cluster = cluster
        self._keys = Keys(prefix)
        self._name = repr(self)
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_connections": max_connections,
        }
        # One retry on a fresh connection (Redis restarted), no backoff: fail fast.
        sync_options = {**options, "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 1)}
        async_options = {**options, "retry": redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1)}
        self._client: SyncClient | None = client
        self._make_client: Callable[[], SyncClient] | None = None
        self._direct: _SyncDirect | None = None  # the session calls' own connections (see _SyncDirect)
        self._lock = threading.Lock()
        if client is None and url is not None:
            # Blocking pools: a burst above max_connections waits (up to the
            # timeout) for a connection to come back, instead of failing at once
            # with "Too many connections".
            if cluster:
                # Made on first use: the Cluster client discovers the slots as it is made.
                self._make_client = lambda: redis.cluster.RedisCluster.from_url(
                    url, connection_pool_class=redis.BlockingConnectionPool, timeout=timeout, **sync_options
                )
            else:
                pool = redis.BlockingConnectionPool.from_url(url, timeout=timeout, **sync_options)
                self._client = redis.Redis.from_pool(pool)
                self._direct = _SyncDirect(pool, max_connections, timeout)
        self._async = _AsyncRedisStore(self._keys, self._name, url, async_client, cluster, async_options)

    def __repr__(self) -> str:
        where = _shown(self.url) if self.url is not None else "a given client"
        return f"RedisStore({where!r}{', cluster=True' if self.cluster else ''})"

    def asyncio(self) -> _AsyncRedisStore:
        """The asyncio face the ASGI middleware uses."""
        return self._async

    @property
    def client(self) -> SyncClient:
        """The synchronous client (a Cluster client is made, and the slots discovered, on first use)."""
        client = self._client
        if client is not None:
            return client
        if self._make_client is None:
            raise ConfigurationError(
                "RedisStore was given only an async_client; pass url= or client= to use it "
                "synchronously (WSGI apps, the CLI)"
            )
        with self._lock:  # one discovery, however many threads ask at once
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _send(self, *command: Any) -> Any:
        direct = self._direct
        if direct is not None:
            return direct.send(command)
        return self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    def _script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            try:
                return self._send("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return self._send("EVAL", script.source, len(keys), *keys, *args)
        except _ERRORS as exc:
            raise _failed(self._name, exc) from exc

    def load(self, key: str) -> StoredRecord | None:
        name, _ = self._keys.session(key)
        try:
            reply = self._send("HGETALL", name)
        except _ERRORS as exc:
            raise _failed(self._name, exc) from exc
        return _record(reply)

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        name, member = self._keys.session(key)
        self._script(CREATE_SCRIPT, [name], self._keys.create(member, head, fields, ttl, user))

    def update(self, key: str, change: Change) -> bool:
        name, member = self._keys.session(key)
        return bool(self._script(UPDATE_SCRIPT, [name], self._keys.update(member, change)))

    def delete(self, key: str) -> bool:
        name, member = self._keys.session(key)
        keys = [name, self._keys.receipt(name)]
        return bool(self._script(DELETE_SCRIPT, keys, (self._keys.prefix, member, _call_id())))

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        index, group = self._keys.index(user)
        flat = self._script(LIST_SCRIPT, [index], (self._keys.prefix, group))
        return [(f"{group}/{member}", head) for member, head in _pairs(flat)]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        index, group = self._keys.index(user)
        kept = "" if keep is None else split(keep)[1]
        keys = [index, self._keys.receipt(index)]
        return int(self._script(DELETE_ALL_SCRIPT, keys, (self._keys.prefix, group, kept, _call_id())))

    def registry_keys(self, user_id: str) -> list[str]:
        """Every registry key (``"<group>/<user id>"``) sessions of ``user_id`` are filed under,
        whatever secret made them: a ``SCAN`` of the keyspace (of every node, on a Cluster),
        for diagnostics (the CLI), not for requests."""
        prefix, marker = self._keys.prefix, "}:u:" + user_id
        pattern = _glob(prefix) + "{*" + _glob(marker)
        found = []
        try:
            for name in self.client.scan_iter(match=pattern, count=1000):
                text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                group = text[len(prefix) + 1 : len(text) - len(marker)]
                if text.startswith(prefix + "{") and text.endswith(marker) and "}" not in group:
                    found.append(f"{group}/{user_id}")
        except _ERRORS as exc:
            raise _failed(self._name, exc) from exc
        return sorted(set(found))

    def close(self) -> None:
        """Close the synchronous client's connections."""
        if self._client is not None:
            self._client.close()


def _pack(command: Sequence[bytes | str | int]) -> bytes:
    """A command in RESP, as redis-py would send it (which costs it more than a round trip to pack)."""
    parts = [b"*%d\r\n" % len(command)]
    for argument in command:
        if isinstance(argument, bool) or not isinstance(argument, bytes | str | int):
            raise TypeError(f"a Redis command argument must be bytes, str or int, got {argument!r}")
        data = argument if isinstance(argument, bytes) else str(argument).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def _is_direct(client: Any) -> bool:
    """Whether commands may go straight on pooled connections (a plain asyncio client)."""
    return isinstance(client, redis.asyncio.Redis) and not client.single_connection_client


# Per client, the connections _direct holds idle, taken from its pool once. (Keyed by
# the client, not the pool: connections refer to their pool, so the entry would never go.)
_IDLE: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


async def _direct(client: redis.asyncio.Redis, *command: Any, keep: bool = True) -> Any:
    """Send one command straight on a connection of the client's pool and read the reply.

    Every request with a session pays for a command, and redis-py's general
    command path costs more on the client than the round trip itself: its
    pool takes two locks, records four metrics and polls the socket on every
    checkout and return. So connections are taken from the pool once, when
    none is idle, and kept in a plain list between commands (the store's
    semaphore bounds how many are in use, so the list never outgrows
    ``max_connections``). The reply is read by the connection's own parser
    (hiredis when installed); :func:`_exchange` sends it again once if the
    connection turned out dead. A disconnected connection reconnects on its
    next command.

    ``keep=False`` (a client the app gave, whose pool its own code shares)
    takes each connection from the pool and gives it back after the command:
    kept connections would leave the app's pool short.
    """
    packed = _pack(command)
    if not keep:
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return await _exchange(connection, packed, check_health=True)
        finally:
            await pool.release(connection)
    idle = _IDLE.get(client)
    if idle is None:
        idle = _IDLE[client] = []
    connection = idle.pop() if idle else await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        return await _exchange(connection, packed, check_health=False)
    finally:
        idle.append(connection)


async def _exchange(connection: Any, packed: bytes, *, check_health: bool) -> Any:
    """One command on ``connection`` and its reply; sent once more if the connection was dead.

    A dead connection (Redis restarted) is disconnected and reconnects as the
    command goes again; an error reply leaves it in use (the whole reply was
    read); any other failure (a cancellation, a timeout) disconnects it and
    propagates.
    """
    for attempt in (1, 2):
        try:
            await connection.send_packed_command(packed, check_health=check_health)
            return await connection.read_response()
        except RedisConnectionError:
            await connection.disconnect()
            if attempt == 2:
                raise
        except ResponseError:
            raise
        except BaseException:
            await connection.disconnect()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


class _SyncDirect:
    """The synchronous face's session calls, sent straight on connections of their own.

    redis-py's command path and its blocking pool cost more on the client than
    the round trip (a queue, a lock, metrics and a socket poll per checkout).
    These connections are made by the client's pool (so closing the store
    closes them) but never go back to its queue: they wait in a plain list
    between calls (``list.pop`` and ``append`` are atomic), and a semaphore
    lets at most ``max_connections`` calls run at once, each waiting up to the
    timeout for its turn. The client's own queue keeps its ``max_connections``
    for everything else (listing registry keys, the CLI). A dead connection is
    disconnected and the command sent once more on it, reconnecting; a
    process forked from this one starts with none (the parent's sockets are
    not its to use).
    """

    def __init__(self, pool: redis.BlockingConnectionPool, limit: int, timeout: float) -> None:
        self._pool = pool
        self._limit = limit
        self._timeout = timeout
        self._reset()
        _SYNC_DIRECTS.add(self)

    def _reset(self) -> None:
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(self._limit)

    def send(self, command: Sequence[Any]) -> Any:
        packed = [_pack(command)]
        slots = self._slots
        if not slots.acquire(timeout=self._timeout):
            raise RedisConnectionError(
                f"all {self._limit} connections stayed in use for {self._timeout} s (max_connections)"
            )
        try:
            idle = self._idle
            try:
                connection = idle.pop()
            except IndexError:
                connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                for attempt in (1, 2):
                    try:
                        connection.send_packed_command(packed, check_health=False)
                        return connection.read_response()
                    except RedisConnectionError:
                        connection.disconnect()
                        if attempt == 2:
                            raise
                    except ResponseError:
                        raise  # the whole reply was read: the connection is fine
                    except BaseException:
                        connection.disconnect()
                        raise
                raise AssertionError("unreachable")  # pragma: no cover
            finally:
                idle.append(connection)
        finally:
            slots.release()


_SYNC_DIRECTS: weakref.WeakSet[_SyncDirect] = weakref.WeakSet()


def _forget_parents_connections() -> None:
    for direct in list(_SYNC_DIRECTS):
        direct._reset()


os.register_at_fork(after_in_child=_forget_parents_connections)


class _AsyncRedisStore:
    """The asyncio face of a :class:`RedisStore` (same keys, same scripts).

    Each operation runs under one ``asyncio.timeout`` rather than redis-py's
    per-read socket timeouts, which wrap every read in a task of its own.
    """

    def __init__(
        self,
        keys: Keys,
        name: str,
        url: str | None,
        client: AsyncClient | None,
        cluster: bool,
        options: dict[str, Any],
    ) -> None:
        self._keys = keys
        self._name = name
        self._given = client
        self._timeout = options["socket_timeout"]
        self._clients: PerLoop[AsyncClient] | None = None
        self._limits: PerLoop[asyncio.Semaphore] | None = None
        if client is None and url is not None:
            client_options = {**options, "socket_timeout": None}  # bounded by _guarded instead

            def create() -> AsyncClient:
                if cluster:
                    return redis.asyncio.cluster.RedisCluster.from_url(url, **client_options)
                return redis.asyncio.Redis.from_pool(
                    redis.asyncio.ConnectionPool.from_url(url, **client_options)
                )

            async def close(client: AsyncClient) -> None:
                await client.aclose()

            async def setup(client: AsyncClient) -> None:
                if isinstance(client, redis.asyncio.cluster.RedisCluster):
                    # Discover the slots once, before concurrent first commands race to
                    # (if it fails, the client tries again on its next command).
                    await client.initialize()

            self._clients = PerLoop(create, close, setup)
            # At most max_connections operations at once per event loop, so that no
            # pool overflows ("Too many connections"): a burst waits for a slot, within
            # the operation's timeout. A semaphore costs far less per call than
            # redis-py's BlockingConnectionPool (a condition, a lock and a timeout of
            # its own), and the asyncio Cluster client's per-node pools cannot block.
            limit = options["max_connections"]

            async def forget(semaphore: asyncio.Semaphore) -> None:
                pass

            self._limits = PerLoop(lambda: asyncio.Semaphore(limit), forget)

    async def client(self) -> AsyncClient:
        if self._given is not None:
            return self._given
        if self._clients is None:
            raise ConfigurationError(
                "RedisStore was given only a synchronous client; pass url= or async_client= "
                "to use it under ASGI"
            )
        return await self._clients.get()

    async def _guarded(self, operation: Coroutine[Any, Any, T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                if self._limits is None:
                    return await operation
                try:
                    slot = await self._limits.get()
                    await slot.acquire()
                except BaseException:
                    operation.close()  # never started
                    raise
                try:
                    return await operation
                finally:
                    slot.release()
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self._name}: no answer from Redis within {self._timeout} s") from exc
        except _ERRORS as exc:
            raise _failed(self._name, exc) from exc

    async def _send(self, *command: Any) -> Any:
        client = await self.client()
        if _is_direct(client):
            return await _direct(client, *command, keep=self._given is None)  # type: ignore[arg-type]
        return await client.execute_command(*command)

    async def _script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self._send("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._send("EVAL", script.source, len(keys), *keys, *args)

    async def load(self, key: str) -> StoredRecord | None:
        name, _ = self._keys.session(key)
        return _record(await self._guarded(self._send("HGETALL", name)))

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        name, member = self._keys.session(key)
        args = self._keys.create(member, head, fields, ttl, user)
        await self._guarded(self._script(CREATE_SCRIPT, [name], args))

    async def update(self, key: str, change: Change) -> bool:
        name, member = self._keys.session(key)
        return bool(
            await self._guarded(self._script(UPDATE_SCRIPT, [name], self._keys.update(member, change)))
        )

    async def delete(self, key: str) -> bool:
        name, member = self._keys.session(key)
        keys = [name, self._keys.receipt(name)]
        args = (self._keys.prefix, member, _call_id())
        return bool(await self._guarded(self._script(DELETE_SCRIPT, keys, args)))

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        index, group = self._keys.index(user)
        flat = await self._guarded(self._script(LIST_SCRIPT, [index], (self._keys.prefix, group)))
        return [(f"{group}/{member}", head) for member, head in _pairs(flat)]

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        index, group = self._keys.index(user)
        kept = "" if keep is None else split(keep)[1]
        keys = [index, self._keys.receipt(index)]
        args = (self._keys.prefix, group, kept, _call_id())
        return int(await self._guarded(self._script(DELETE_ALL_SCRIPT, keys, args)))

    async def aclose(self) -> None:
        """Close this event loop's client (a new one is made if the store is used again)."""
        if self._clients is not None:
            await self._clients.aclose()
