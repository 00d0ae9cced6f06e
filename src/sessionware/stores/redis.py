"""The Redis store: shared sessions for many app servers, standalone or Cluster."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError, MissingDependency, StoreError, StoreUnavailable
from ._loops import PerLoop

try:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.retry
    import redis.backoff
    import redis.cluster
    import redis.retry
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependency("redis", extra="redis") from exc

if TYPE_CHECKING:
    SyncClient = redis.Redis | redis.cluster.RedisCluster
    AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

__all__ = ["RedisStore"]

T = TypeVar("T")

# A session is a hash {d: data, v: version, u: registry key or ""} under
# <prefix>{<group>}:s:<hash>; a user's registry is a sorted set of session
# hashes scored by expiry (ms) under <prefix>{<group>}:u:<user>. The {group}
# hash tag puts a user's sessions and registry in one Cluster slot, so every
# script below touches a single slot. Times come from the Redis server clock.

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

# Registry bookkeeping shared by the writes: ARGV user key -> index key, and a
# helper to file or unfile a session hash.
_INDEX = """
local function index_key(user)
    local slash = string.find(user, '/', 1, true)
    return ARGV[1] .. '{' .. string.sub(user, 1, slash - 1) .. '}:u:' .. string.sub(user, slash + 1)
end
local function unfile(user, member)
    if user and user ~= '' then redis.call('ZREM', index_key(user), member) end
end
local function file(user, member, expires, now)
    if user == '' then return end
    local index = index_key(user)
    redis.call('ZADD', index, expires, member)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
    if redis.call('PTTL', index) < expires - now then redis.call('PEXPIRE', index, expires - now) end
end
"""

# KEYS[1] session; ARGV: prefix, member, data, ttl_ms, user, version ('' for a new record)
_SAVE = (
    _NOW
    + _INDEX
    + """
local version = 1
local old_user = false
if ARGV[6] ~= '' then
    local current = redis.call('HMGET', KEYS[1], 'v', 'u')
    if not current[1] or current[1] ~= ARGV[6] then return 0 end
    version = tonumber(current[1]) + 1
    old_user = current[2]
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'v', version, 'u', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if old_user and old_user ~= ARGV[5] then unfile(old_user, ARGV[2]) end
file(ARGV[5], ARGV[2], now + tonumber(ARGV[4]), now)
return 1
"""
)

# The deletes are sent again if their reply is lost (redis-py's Retry, _direct):
# a repeat of a delete that did happen would find nothing and report a log-out
# or revocation as not done. So each call carries an ID of its own, and a
# delete that removed something leaves a short-lived receipt under KEYS[2]
# (same hash tag): a repeat with the same ID answers what the first attempt did.
_RECEIPT = """
local receipt = redis.call('GET', KEYS[2])
if receipt then
    local sep = string.find(receipt, ' ', 1, true)
    if string.sub(receipt, 1, sep - 1) == ARGV[#ARGV] then return tonumber(string.sub(receipt, sep + 1)) end
end
local function done(result)
    if result > 0 then redis.call('SET', KEYS[2], ARGV[#ARGV] .. ' ' .. result, 'PX', 60000) end
    return result
end
"""

# KEYS[1] session, KEYS[2] receipt; ARGV: prefix, member, call ID
_DELETE = (
    _INDEX
    + _RECEIPT
    + """
local user = redis.call('HGET', KEYS[1], 'u')
local existed = redis.call('DEL', KEYS[1])
unfile(user, ARGV[2])
return done(existed)
"""
)

# KEYS[1] index; ARGV: prefix, group -> flat [hash, data, hash, data, ...]
_LIST = (
    _NOW
    + """
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    local data = redis.call('HGET', ARGV[1] .. '{' .. ARGV[2] .. '}:s:' .. member, 'd')
    if data then
        out[#out + 1] = member
        out[#out + 1] = data
    end
end
return out
"""
)

# KEYS[1] index, KEYS[2] receipt; ARGV: prefix, group, kept member ('' for none), call ID
_DELETE_ALL = (
    _RECEIPT
    + """
local deleted = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if member ~= ARGV[3] then
        deleted = deleted + redis.call('DEL', ARGV[1] .. '{' .. ARGV[2] .. '}:s:' .. member)
        redis.call('ZREM', KEYS[1], member)
    end
end
return done(deleted)
"""
)


class _Script:
    """A Lua script called by its SHA1 (one round trip), loaded on first miss."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def run(self, client: SyncClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    async def arun(self, client: AsyncClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        direct = _is_direct(client)
        try:
            if direct:
                return await _direct(client, "EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[arg-type]
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


_SAVE_SCRIPT = _Script(_SAVE)
_DELETE_SCRIPT = _Script(_DELETE)
_LIST_SCRIPT = _Script(_LIST)
_DELETE_ALL_SCRIPT = _Script(_DELETE_ALL)


def _is_direct(client: Any) -> bool:
    """Whether commands may go straight on a pooled connection (a plain asyncio client)."""
    return isinstance(client, redis.asyncio.Redis) and not client.single_connection_client


def _split(key: str) -> tuple[str, str]:
    group, _, rest = key.partition("/")
    return group, rest


class _Keys:
    """Key names, shared by both faces."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, key: str) -> tuple[str, str]:
        group, member = _split(key)
        return f"{self.prefix}{{{group}}}:s:{member}", member

    def index(self, user: str) -> tuple[str, str]:
        group, name = _split(user)
        return f"{self.prefix}{{{group}}}:u:{name}", group

    def receipt(self, name: str) -> str:
        """Where a delete of the session or index ``name`` leaves its receipt (same slot)."""
        head, _, tail = name.partition("}:")
        return f"{head}}}:r:{tail}"


def _call_id() -> str:
    return secrets.token_hex(8)


def _failed(exc: RedisError) -> StoreError:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return StoreUnavailable(f"RedisStore: {exc}")
    return StoreError(f"RedisStore: {exc}")


def _record(data: Any, version: Any) -> tuple[bytes, int] | None:
    return None if data is None else (bytes(data), int(version))


def _pairs(flat: list[bytes]) -> list[tuple[str, bytes]]:
    return [(flat[i].decode(), bytes(flat[i + 1])) for i in range(0, len(flat), 2)]


class RedisStore:
    """Keep sessions in Redis, standalone or Cluster: for apps on many machines.

    Each session is a Redis hash with a native TTL; each logged-in user has a
    sorted-set registry of their sessions. A request that only reads the
    session costs exactly one Redis command (``HMGET``); a write costs one
    more round trip (a Lua script that compare-and-sets the record and files it
    in the user's registry atomically). A user's sessions and registry share a
    hash tag, so on a Cluster they live in one slot and revoking all of them is
    one atomic script.

    Under ASGI the middleware uses the asyncio client (one pool per event
    loop); WSGI apps and the CLI use the synchronous one. Both come from the
    same settings. Failures raise :class:`~sessionware.StoreUnavailable`
    (connection refused, timeout) or :class:`~sessionware.StoreError`, which
    the middleware answers with a 503; the clients reconnect by themselves when
    Redis is back.

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
            than failing with "Too many connections". Under ASGI on a Cluster,
            at most this many calls run at once per event loop.

    A command whose connection fails is sent once more on a fresh connection
    (Redis restarted). That may repeat a command the server did run, its reply
    lost: reads and the compare-and-set save are safe to repeat, and deletes
    carry a call ID and leave a receipt for a minute, so a repeated delete
    reports what the first attempt did instead of "nothing was there" (on a
    Cluster, a failover before the receipt reached the replica loses it: the
    repeat then reports "not there", and a revocation says it revoked less). A call
    that times out raises :class:`~sessionware.StoreUnavailable`, which means
    "not known to be done": the command may still have run.

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
        self._keys = _Keys(prefix)
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_connections": max_connections,
        }
        # One retry on a fresh connection (Redis restarted), no backoff: fail fast.
        sync_options = {**options, "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 1)}
        async_options = {**options, "retry": redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1)}
        self._client: SyncClient | None = client
        if client is None and url is not None:
            # A blocking pool: a burst above max_connections waits (up to the
            # timeout) for a connection to come back, instead of failing at once
            # with "Too many connections".
            if cluster:
                self._client = redis.cluster.RedisCluster.from_url(
                    url, connection_pool_class=redis.BlockingConnectionPool, timeout=timeout, **sync_options
                )
            else:
                pool = redis.BlockingConnectionPool.from_url(url, timeout=timeout, **sync_options)
                self._client = redis.Redis.from_pool(pool)
        self._async = _AsyncRedisStore(self._keys, url, async_client, cluster, async_options)

    def __repr__(self) -> str:
        where = self.url if self.url is not None else "a given client"
        return f"RedisStore({where!r}{', cluster=True' if self.cluster else ''})"

    def asyncio(self) -> _AsyncRedisStore:
        """The asyncio face the ASGI middleware uses."""
        return self._async

    @property
    def client(self) -> SyncClient:
        if self._client is None:
            raise ConfigurationError(
                "RedisStore was given only an async_client; pass url= or client= to use it "
                "synchronously (WSGI apps, the CLI)"
            )
        return self._client

    def load(self, key: str) -> tuple[bytes, int] | None:
        name, _ = self._keys.session(key)
        try:
            data, version = self.client.hmget(name, ["d", "v"])
        except RedisError as exc:
            raise _failed(exc) from exc
        return _record(data, version)

    def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        name, member = self._keys.session(key)
        args = (self._keys.prefix, member, data, ttl * 1000, user or "", "" if version is None else version)
        try:
            return bool(_SAVE_SCRIPT.run(self.client, [name], args))
        except RedisError as exc:
            raise _failed(exc) from exc

    def delete(self, key: str) -> bool:
        name, member = self._keys.session(key)
        try:
            keys = [name, self._keys.receipt(name)]
            return bool(_DELETE_SCRIPT.run(self.client, keys, (self._keys.prefix, member, _call_id())))
        except RedisError as exc:
            raise _failed(exc) from exc

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        index, group = self._keys.index(user)
        try:
            flat = _LIST_SCRIPT.run(self.client, [index], (self._keys.prefix, group))
        except RedisError as exc:
            raise _failed(exc) from exc
        return [(f"{group}/{member}", data) for member, data in _pairs(flat)]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        index, group = self._keys.index(user)
        kept = "" if keep is None else _split(keep)[1]
        try:
            keys = [index, self._keys.receipt(index)]
            args = (self._keys.prefix, group, kept, _call_id())
            return int(_DELETE_ALL_SCRIPT.run(self.client, keys, args))
        except RedisError as exc:
            raise _failed(exc) from exc

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


async def _direct(client: redis.asyncio.Redis, *command: Any) -> Any:
    """Send one command straight on a pooled connection and read the reply.

    Every request with a session pays for a command, and redis-py's general
    command path costs more on the client than the round trip itself. A
    connection that turns out dead (Redis restarted) is dropped and the command
    sent once more on a fresh one; any other failure drops the connection and
    propagates.
    """
    pool = client.connection_pool
    packed = _pack(command)
    for attempt in (1, 2):
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(packed)
            return await connection.read_response()
        except RedisConnectionError:
            await connection.disconnect()
            if attempt == 2:
                raise
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
    raise AssertionError("unreachable")  # pragma: no cover


class _AsyncRedisStore:
    """The asyncio face of a :class:`RedisStore` (same keys, same scripts).

    Each operation runs under one ``asyncio.timeout`` rather than redis-py's
    per-read socket timeouts, which wrap every read in a task of its own.
    """

    def __init__(
        self,
        keys: _Keys,
        url: str | None,
        client: AsyncClient | None,
        cluster: bool,
        options: dict[str, Any],
    ) -> None:
        self._keys = keys
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
                    # Discover the slots once, before concurrent first commands race to.
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
            raise StoreUnavailable(f"RedisStore: no answer within {self._timeout} s") from exc
        except RedisError as exc:
            raise _failed(exc) from exc

    async def _load(self, name: str) -> Any:
        client = await self.client()
        if _is_direct(client):
            return await _direct(client, "HMGET", name, "d", "v")  # type: ignore[arg-type]
        return await client.hmget(name, ["d", "v"])

    async def _script(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await script.arun(await self.client(), keys, args)

    async def load(self, key: str) -> tuple[bytes, int] | None:
        name, _ = self._keys.session(key)
        data, version = await self._guarded(self._load(name))
        return _record(data, version)

    async def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        name, member = self._keys.session(key)
        args = (self._keys.prefix, member, data, ttl * 1000, user or "", "" if version is None else version)
        return bool(await self._guarded(self._script(_SAVE_SCRIPT, [name], args)))

    async def delete(self, key: str) -> bool:
        name, member = self._keys.session(key)
        keys = [name, self._keys.receipt(name)]
        args = (self._keys.prefix, member, _call_id())
        return bool(await self._guarded(self._script(_DELETE_SCRIPT, keys, args)))

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        index, group = self._keys.index(user)
        flat = await self._guarded(self._script(_LIST_SCRIPT, [index], (self._keys.prefix, group)))
        return [(f"{group}/{member}", data) for member, data in _pairs(flat)]

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        index, group = self._keys.index(user)
        kept = "" if keep is None else _split(keep)[1]
        keys = [index, self._keys.receipt(index)]
        args = (self._keys.prefix, group, kept, _call_id())
        return int(await self._guarded(self._script(_DELETE_ALL_SCRIPT, keys, args)))

    async def aclose(self) -> None:
        """Close this event loop's client (a new one is made if the store is used again)."""
        if self._clients is not None:
            await self._clients.aclose()
