"""RedisStore beyond the contract: its layout, its pools under a burst (SW-39), lost replies,
concurrent writers on one session, errors, and the commands it sends straight."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser, _AsyncRESP3Parser, _HiredisParser

from sessionware import StoreError, StoreUnavailable
from sessionware._contract import change
from sessionware.stores._redis_scripts import DELETE_ALL_SCRIPT, DELETE_SCRIPT
from sessionware.stores.redis import RedisStore, _pack

from ..conftest import unique_prefix
from ..servers import ReplyDroppingProxy, free_port


@pytest.fixture(params=["redis", "redis-cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    """Here: a RedisStore on the shared Redis, then one on the tests' Cluster."""
    if request.param == "redis":
        made = RedisStore(request.getfixturevalue("redis_url"), prefix=unique_prefix())
    else:
        cluster = request.getfixturevalue("redis_cluster")
        made = RedisStore(cluster.url, cluster=True, prefix=unique_prefix())
    yield made
    made.close()


# -- layout ------------------------------------------------------------------------


def test_a_session_is_a_hash_of_its_fields_with_the_head_and_user_under_reserved_names(
    store: RedisStore,
) -> None:
    """Each field under its own name; the head and the user under names that start with NUL."""
    store.create("g/k", b"\x00\xffhead", {"theme": '"dark"', "n": "1"}, 60, "g/alice")
    name, member = store._keys.session("g/k")
    raw: Any = store.client
    assert raw.hgetall(name) == {
        b"\x00h": b"\x00\xffhead",
        b"\x00u": b"g/alice",
        b"theme": b'"dark"',
        b"n": b"1",
    }
    assert 59_000 < raw.pttl(name) <= 60_000  # a native TTL
    index, _ = store._keys.index("g/alice")
    assert raw.zscore(index, member) is not None  # filed in the user's registry
    assert store.update("g/k", change(b"h2", {"n": "2"}, ("theme",))) is True  # now anonymous
    assert raw.hgetall(name) == {b"\x00h": b"h2", b"n": b"2"}
    assert raw.zscore(index, member) is None


def test_a_hash_in_the_old_layout_loads_as_nothing_and_is_not_updated(store: RedisStore) -> None:
    """A record sessionware wrote as {d, v, u} is no session: not loaded, not written to."""
    name, _ = store._keys.session("g/old")
    raw: Any = store.client
    raw.hset(name, mapping={"d": "old data", "v": 3, "u": "g/alice"})
    raw.pexpire(name, 60_000)
    assert store.load("g/old") is None
    assert store.update("g/old", change(b"new", {"a": "1"})) is False
    assert raw.hgetall(name) == {b"d": b"old data", b"v": b"3", b"u": b"g/alice"}
    assert store.delete("g/old") is True  # a log-out still removes it


def test_thousands_of_fields_are_set_and_removed_in_one_update(store: RedisStore) -> None:
    """More arguments than one Lua unpack() takes: the script writes them in chunks."""
    fields = {f"f{n}": f"{n}" for n in range(12_000)}
    store.create("g/many", b"h", fields, 60, "g/alice")
    removed = tuple(f"f{n}" for n in range(0, 12_000, 2))
    updated = {f"new{n}": "x" for n in range(6_000)}
    assert store.update("g/many", change(b"h2", updated, removed, user="g/alice")) is True
    loaded = store.load("g/many")
    assert loaded is not None
    assert dict(loaded[1]) == {f"f{n}": f"{n}" for n in range(1, 12_000, 2)} | updated


# -- concurrency -------------------------------------------------------------------


def test_concurrent_asyncio_and_threaded_updates_of_one_session_all_keep_their_field(
    store: RedisStore,
) -> None:
    """64 asyncio updates and 16 threads at once, each setting fields of its own: none lost, none failed."""
    store.create("g/busy", b"h", {"start": "1"}, 60, "g/alice")
    tasks, threads, rounds = 64, 16, 3
    barrier = threading.Barrier(threads + 1)
    answers: list[Any] = []

    def sync_writer(n: int) -> None:
        barrier.wait()
        for r in range(rounds):
            try:
                answers.append(store.update("g/busy", change(b"h", {f"t{n}-{r}": f"{r}"}, user="g/alice")))
            except Exception as exc:
                answers.append(exc)

    async def async_writers() -> None:
        face = store.asyncio()

        async def writer(n: int) -> None:
            for r in range(rounds):
                answers.append(
                    await face.update("g/busy", change(b"h", {f"a{n}-{r}": f"{r}"}, user="g/alice"))
                )

        await face.load("g/busy")  # this loop's client is made before the burst
        await asyncio.to_thread(barrier.wait)
        outcomes = await asyncio.gather(*(writer(n) for n in range(tasks)), return_exceptions=True)
        answers.extend(outcome for outcome in outcomes if outcome is not None)
        await face.aclose()

    workers = [threading.Thread(target=sync_writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    asyncio.run(async_writers())
    for worker in workers:
        worker.join()
    assert answers == [True] * ((tasks + threads) * rounds)
    expected = {"start": "1"}
    expected |= {f"a{n}-{r}": f"{r}" for n in range(tasks) for r in range(rounds)}
    expected |= {f"t{n}-{r}": f"{r}" for n in range(threads) for r in range(rounds)}
    loaded = store.load("g/busy")
    assert loaded is not None
    assert dict(loaded[1]) == expected
    assert store.user_sessions("g/alice") == [("g/busy", b"h")]


# -- pools -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
def test_a_burst_larger_than_the_pool_waits_for_a_connection_instead_of_failing(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """40 calls at once on a pool of 2: each waits its turn (within the timeout)."""
    if kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=unique_prefix(), max_connections=2)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        store = RedisStore(cluster.url, cluster=True, prefix=unique_prefix(), max_connections=2)
    request.addfinalizer(store.close)
    store.create("g/k", b"h", {"a": "1"}, 60, None)
    face = store.asyncio()

    async def burst() -> list[Any]:
        loads = [face.load("g/k") for _ in range(20)]
        updates = [face.update("g/k", change(b"h", {f"f{n}": "1"})) for n in range(20)]
        outcomes = await asyncio.gather(*loads, *updates, return_exceptions=True)
        await face.aclose()
        return outcomes

    outcomes = asyncio.run(burst())
    assert all(isinstance(outcome, tuple) and outcome[0] == b"h" for outcome in outcomes[:20]), outcomes
    assert outcomes[20:] == [True] * 20
    loaded = store.load("g/k")
    assert loaded is not None
    assert len(loaded[1]) == 21


def test_the_asyncio_face_reuses_its_connections_and_never_opens_more_than_max_connections(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    """Commands go straight on connections kept between calls: 400 calls, 40 at a time, on 3."""
    store = RedisStore(redis_url, prefix=unique_prefix(), max_connections=3)
    request.addfinalizer(store.close)
    store.create("g/k", b"h", {"a": "1"}, 60, None)
    face = store.asyncio()
    monitor = redis.Redis.from_url(redis_url)
    request.addfinalizer(monitor.close)

    def received() -> int:
        return int(monitor.info("stats")["total_connections_received"])

    async def waves() -> list[Any]:
        outcomes: list[Any] = []
        for wave in range(10):
            loads = [face.load("g/k") for _ in range(20)]
            updates = [face.update("g/k", change(b"h", {f"w{wave}n{n}": "1"})) for n in range(20)]
            outcomes += await asyncio.gather(*loads, *updates, return_exceptions=True)
        await face.aclose()
        return outcomes

    before = received()
    outcomes = asyncio.run(waves())
    assert received() - before <= 3
    assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    loaded = store.load("g/k")
    assert loaded is not None
    assert len(loaded[1]) == 1 + 200


def test_a_client_the_app_gave_gets_its_connections_back_after_every_command(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    """The app's own pool (one connection here) is not left short by the store's calls."""
    store = RedisStore(redis_url, prefix=unique_prefix())
    request.addfinalizer(store.close)
    store.create("g/k", b"h", {"a": "1"}, 60, None)

    async def share() -> list[Any]:
        client = redis.asyncio.Redis.from_pool(
            redis.asyncio.ConnectionPool.from_url(redis_url, max_connections=1)
        )
        given = RedisStore(async_client=client, prefix=store._keys.prefix).asyncio()
        try:
            return [
                await given.load("g/k"),
                await client.ping(),
                await given.load("g/k"),
                await client.ping(),
            ]
        finally:
            await client.aclose()

    assert asyncio.run(share()) == [(b"h", {"a": "1"}), True, (b"h", {"a": "1"}), True]


def test_the_sync_face_runs_a_burst_larger_than_max_connections_on_that_many_connections(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    """40 threads at once on max_connections=2: each waits its turn, none fails, 2 connections."""
    store = RedisStore(redis_url, prefix=unique_prefix(), timeout=5, max_connections=2)
    request.addfinalizer(store.close)
    store.create("g/k", b"v", {"a": "1"}, 60, None)
    monitor = redis.Redis.from_url(redis_url)
    request.addfinalizer(monitor.close)
    before = int(monitor.info("stats")["total_connections_received"])
    outcomes: list[Any] = []
    start = threading.Barrier(40)

    def work(n: int) -> None:
        start.wait()
        try:
            if n % 2:
                outcomes.append(store.load("g/k"))
            else:
                outcomes.append(store.update("g/k", change(b"v", {f"f{n}": "1"})))
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(outcomes) == 40
    wrong = [o for o in outcomes if o is not True and not (isinstance(o, tuple) and o[1].get("a") == "1")]
    assert not wrong, wrong
    assert int(monitor.info("stats")["total_connections_received"]) - before <= 2
    loaded = store.load("g/k")
    assert loaded is not None
    assert len(loaded[1]) == 21


def test_a_forked_process_uses_connections_of_its_own(redis_url: str, request: pytest.FixtureRequest) -> None:
    """A store used before fork() (gunicorn --preload): the child never shares the parent's sockets."""
    store = RedisStore(redis_url, prefix=unique_prefix())
    request.addfinalizer(store.close)
    store.create("g/k", b"v", {"a": "1"}, 60, None)
    assert store.load("g/k") == (b"v", {"a": "1"})  # the parent now holds an idle connection
    monitor = redis.Redis.from_url(redis_url)
    request.addfinalizer(monitor.close)
    names = {entry["id"] for entry in monitor.client_list()}
    pid = os.fork()
    if pid == 0:  # the child: a load and an update on the inherited store, then out
        status = 1
        try:
            if store.load("g/k") == (b"v", {"a": "1"}) and store.update("g/k", change(b"v", {"child": "1"})):
                status = 0
        finally:
            os._exit(status)
    for _ in range(50):  # the parent keeps using its connection meanwhile
        assert store.load("g/k") is not None
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    loaded = store.load("g/k")
    assert loaded is not None
    assert loaded[1].get("child") == "1"
    assert {entry["id"] for entry in monitor.client_list()} >= names  # the parent's connection survived


# -- lost replies ------------------------------------------------------------------


@pytest.fixture
def proxy(redis_url: str) -> Iterator[ReplyDroppingProxy]:
    upstream = ReplyDroppingProxy(int(urlsplit(redis_url).port or 6379))
    try:
        yield upstream
    finally:
        upstream.close()


def test_a_delete_whose_reply_was_lost_is_still_reported_as_done(proxy: ReplyDroppingProxy) -> None:
    """The server deleted, the reply was lost, the client sent the same delete again:
    it answers True (the first attempt did it), not False ("there was nothing")."""
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix=unique_prefix(), timeout=2)
    store.create("g/warm-up", b"w", {}, 60, "g/bob")
    store.delete("g/warm-up")  # the scripts are loaded: EVALSHA succeeds from here on
    store.delete_user_sessions("g/bob", None)
    for key in ("g/one", "g/two", "g/three"):
        store.create(key, b"v", {"a": "1"}, 60, "g/alice")

    proxy.drop_reply_to(DELETE_SCRIPT.sha.encode())
    assert store.delete("g/one") is True
    assert proxy.dropped.is_set()
    assert store.load("g/one") is None
    assert store.delete("g/one") is False  # a later delete still finds nothing

    proxy.drop_reply_to(DELETE_ALL_SCRIPT.sha.encode())
    assert store.delete_user_sessions("g/alice", None) == 2
    assert proxy.dropped.is_set()

    async def asynchronously() -> None:
        face = store.asyncio()
        for key in ("g/four", "g/five", "g/six"):
            await face.create(key, b"v", {}, 60, "g/carol")
        proxy.drop_reply_to(DELETE_SCRIPT.sha.encode())
        assert await face.delete("g/four") is True
        assert proxy.dropped.is_set()
        proxy.drop_reply_to(DELETE_ALL_SCRIPT.sha.encode())
        assert await face.delete_user_sessions("g/carol", None) == 2
        assert proxy.dropped.is_set()
        await face.aclose()

    asyncio.run(asynchronously())
    store.close()


# -- errors ------------------------------------------------------------------------


def test_cluster_mode_against_a_standalone_redis_says_so_on_every_call(redis_url: str) -> None:
    """Not a redis-py traceback text: one message that names the mistake and the fix."""
    store = RedisStore(redis_url, cluster=True, prefix=unique_prefix(), timeout=1)  # no I/O yet
    errors: list[BaseException] = []
    for _ in range(2):
        with pytest.raises(StoreError) as caught:
            store.load("g/k")
        errors.append(caught.value)

    async def asynchronously() -> None:
        face = store.asyncio()
        for _ in range(2):  # the second on the client the first one made
            with pytest.raises(StoreError) as caught:
                await face.update("g/k", change(b"h"))
            errors.append(caught.value)

    asyncio.run(asynchronously())
    store.close()
    assert not any(isinstance(error, StoreUnavailable) for error in errors)  # it is up: it is the wrong kind
    assert len({str(error) for error in errors}) == 1
    assert str(errors[0]) == (
        f"RedisStore({redis_url!r}, cluster=True): the server is not a Redis Cluster (it answered "
        "CLUSTER SLOTS with 'This instance has cluster support disabled'); for a standalone Redis "
        "use its redis:// URL without cluster=True"
    )


def test_a_cluster_store_is_made_without_io_and_an_unreachable_cluster_is_unavailable() -> None:
    """An app starts while its Redis Cluster is down: every call then fails as unavailable."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", cluster=True, timeout=0.5)
    with pytest.raises(StoreUnavailable, match="cannot reach the Redis Cluster"):
        store.create("g/k", b"h", {}, 60, None)
    with pytest.raises(StoreUnavailable, match="cannot reach the Redis Cluster"):
        asyncio.run(store.asyncio().load("g/k"))
    store.close()


def test_an_error_reply_is_a_store_error_and_leaves_the_connection_usable(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix=unique_prefix())
    name, _ = store._keys.session("g/not-a-hash")
    raw: Any = store.client
    raw.set(name, b"a string", px=60_000)
    store.create("g/fine", b"h", {}, 60, None)

    async def asynchronously() -> None:
        face = store.asyncio()
        for _ in range(3):  # the same pooled connection each time
            with pytest.raises(StoreError, match="WRONGTYPE") as caught:
                await face.load("g/not-a-hash")
            assert not isinstance(caught.value, StoreUnavailable)
            assert await face.load("g/fine") == (b"h", {})
        await face.aclose()

    with pytest.raises(StoreError, match="WRONGTYPE"):
        store.load("g/not-a-hash")
    asyncio.run(asynchronously())
    store.close()


def test_the_repr_and_the_errors_never_show_the_password() -> None:
    port = free_port()
    store = RedisStore(f"redis://app:s3cret@127.0.0.1:{port}/0", timeout=0.5)
    assert repr(store) == f"RedisStore('redis://app:***@127.0.0.1:{port}/0')"
    with pytest.raises(StoreUnavailable) as caught:
        store.load("g/k")
    assert str(caught.value).startswith(repr(store) + ": cannot reach Redis")
    assert "s3cret" not in str(caught.value)
    store.close()


# -- commands sent straight --------------------------------------------------------


def test_both_faces_read_replies_with_hiredis(redis_url: str) -> None:
    """hiredis (part of the redis extra) is the parser the store's clients read with."""
    store = RedisStore(redis_url, prefix=unique_prefix())
    assert store.load("g/k") is None
    sync_client: Any = store.client
    connection = sync_client.connection_pool.get_connection()
    assert isinstance(connection._parser, _HiredisParser)
    sync_client.connection_pool.release(connection)

    async def asynchronously() -> None:
        face = store.asyncio()
        assert await face.load("g/k") is None
        client: Any = await face.client()
        connection = await client.connection_pool.get_connection()
        assert isinstance(connection._parser, _AsyncHiredisParser)
        await client.connection_pool.release(connection)
        await face.aclose()

    asyncio.run(asynchronously())
    store.close()


@pytest.mark.parametrize(
    ("parser", "protocol"),
    [
        (_AsyncHiredisParser, 3),
        (_AsyncHiredisParser, 2),
        (_AsyncRESP3Parser, 3),  # redis-py's own, without hiredis
        (_AsyncRESP2Parser, 2),
    ],
)
def test_commands_sent_straight_read_the_same_replies_with_every_parser_and_protocol(
    redis_url: str, parser: type, protocol: int
) -> None:
    """hiredis or redis-py's parser, RESP3 (a hash is a map) or RESP2 (a flat list): the same records."""
    prefix = unique_prefix()

    async def scenario() -> None:
        pool: Any = redis.asyncio.ConnectionPool.from_url(redis_url, parser_class=parser, protocol=protocol)
        client = redis.asyncio.Redis.from_pool(pool)
        connection = await pool.get_connection()
        assert type(connection._parser) is parser
        await pool.release(connection)
        face = RedisStore(async_client=client, prefix=prefix).asyncio()
        head = bytes(range(256))
        await face.create("g/k", head, {"a": "1", "b": "2"}, 60, "g/alice")
        assert await face.load("g/k") == (head, {"a": "1", "b": "2"})
        await client.script_flush()
        assert (
            await face.update("g/k", change(b"h2", {"c": "3"}, ("a",), user="g/alice")) is True
        )  # sent whole
        assert await face.load("g/k") == (b"h2", {"b": "2", "c": "3"})
        assert await face.user_sessions("g/alice") == [("g/k", b"h2")]
        assert await face.update("g/gone", change(b"h")) is False
        assert await face.load("g/gone") is None
        assert await face.delete_user_sessions("g/alice", None) == 1
        assert await face.delete("g/k") is False
        await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "command",
    [
        ("HGETALL", "sw:{ab12}:s:cd34"),
        (
            "EVALSHA",
            "f" * 40,
            1,
            "sw:{g}:s:k",
            "sw:",
            "k",
            86400000,
            b"\x00\x83head\r\n",
            "g/u",
            2,
            "n",
            b"1",
        ),
        ("SET", "ключ", "значение"),
    ],
)
def test_commands_sent_straight_are_packed_as_redis_py_packs_them(command: tuple[Any, ...]) -> None:
    expected = b"".join(redis.asyncio.Connection().pack_command(*command))
    assert _pack(command) == expected


def test_a_command_argument_redis_cannot_take_is_refused() -> None:
    bad: Any
    for bad in (True, 1.5, None):
        with pytest.raises(TypeError):
            _pack(("SET", "k", bad))
