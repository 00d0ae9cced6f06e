"""RedisStore against servers of the tests' own that restart, stall on a script, or come up late.

Each server listens on a loopback port of its own and is stopped or killed by
its PID (tests/servers.py), never by name.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sessionware import StoreBusy, StoreUnavailable
from sessionware._contract import change
from sessionware.stores.redis import RedisStore

from ..conftest import unique_prefix
from ..servers import RedisServer, wait_for


@pytest.fixture
def server() -> Iterator[RedisServer]:
    own = RedisServer().start()
    try:
        yield own
    finally:
        own.close()


def warm(store: RedisStore) -> None:
    """Several pooled connections on the sync face, as a threaded WSGI server leaves them."""
    barrier = threading.Barrier(6)

    def use() -> None:
        barrier.wait()
        for n in range(20):
            store.create(f"g/warm-{n}", b"h", {"a": "1"}, 60, "g/u")
            store.load(f"g/warm-{n}")

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_after_a_restart_the_next_sync_call_succeeds(server: RedisServer, how: str) -> None:
    store = RedisStore(server.url, prefix=unique_prefix(), timeout=0.5)
    warm(store)
    getattr(server, how)()
    with pytest.raises(StoreUnavailable):
        store.load("g/k")
    server.start()  # same port; its data (and script cache) are gone
    back = time.monotonic()
    store.create("g/k", b"again", {"a": "1"}, 60, "g/alice")  # the first call: every connection is stale
    assert time.monotonic() - back < 1
    assert store.load("g/k") == (b"again", {"a": "1"})
    assert store.user_sessions("g/alice") == [("g/k", b"again")]
    store.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
@pytest.mark.parametrize("first", ["load", "update"])
def test_after_a_restart_the_next_asyncio_call_succeeds(server: RedisServer, how: str, first: str) -> None:
    """The event loop runs on while Redis is away, as an ASGI server's does."""
    store = RedisStore(server.url, prefix=unique_prefix(), timeout=0.5)
    face = store.asyncio()

    async def scenario() -> None:
        await face.create("g/k", b"h", {"a": "1"}, 60, None)
        await asyncio.gather(*(face.load("g/k") for _ in range(12)))  # twelve pooled connections
        await asyncio.to_thread(getattr(server, how))
        with pytest.raises(StoreUnavailable):
            await face.load("g/k")
        await asyncio.to_thread(server.start)
        back = time.monotonic()
        if first == "load":
            assert await face.load("g/k") is None  # the server kept no data
        else:
            assert await face.update("g/k", change(b"h2")) is False  # sent whole: its SHA1 is unknown now
        assert time.monotonic() - back < 1
        await face.create("g/k", b"again", {}, 60, None)
        assert await face.load("g/k") == (b"again", {})
        await face.aclose()

    asyncio.run(scenario())
    store.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_after_a_restart_while_the_event_loop_slept_the_next_asyncio_call_succeeds(
    server: RedisServer, how: str
) -> None:
    """The loop has not yet seen the pooled connections close: the first one tried is dead."""
    store = RedisStore(server.url, prefix=unique_prefix(), timeout=0.5)
    face = store.asyncio()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(face.create("g/k", b"h", {"a": "1"}, 60, None))
        getattr(server, how)()
        server.start()
        back = time.monotonic()
        assert loop.run_until_complete(face.load("g/k")) is None  # sent again on a fresh connection
        assert time.monotonic() - back < 1
        loop.run_until_complete(face.create("g/k", b"again", {}, 60, None))
        assert loop.run_until_complete(face.load("g/k")) == (b"again", {})
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        store.close()


def test_a_script_running_past_the_busy_threshold_is_store_busy_and_then_passes() -> None:
    """Redis answers BUSY while someone's long script runs: contention, not an outage."""
    server = RedisServer(None, "--busy-reply-threshold", "50").start()
    store = RedisStore(server.url, prefix=unique_prefix(), timeout=1)
    try:
        store.create("g/k", b"h", {"a": "1"}, 60, None)
        blocker = redis.Redis.from_url(server.url)
        spin = "local t0 = redis.call('TIME')[1] while redis.call('TIME')[1] - t0 < 2 do end return 1"
        thread = threading.Thread(target=blocker.eval, args=(spin, 0))
        thread.start()
        time.sleep(0.3)  # past the 50 ms threshold
        with pytest.raises(StoreBusy, match="busy"):
            store.load("g/k")

        async def asynchronously() -> None:
            face = store.asyncio()
            with pytest.raises(StoreBusy, match="busy"):
                await face.update("g/k", change(b"h2"))
            await asyncio.to_thread(thread.join)
            assert await face.update("g/k", change(b"h2")) is True
            await face.aclose()

        asyncio.run(asynchronously())
        assert store.load("g/k") == (b"h2", {"a": "1"})
        blocker.close()
    finally:
        store.close()
        server.close()


def test_a_cluster_store_made_before_its_cluster_is_up_works_once_it_is() -> None:
    """No I/O at construction: the app starts, 503s, and needs no restart when the Cluster comes."""
    node = RedisServer(None, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    store = RedisStore(node.url, cluster=True, prefix=unique_prefix(), timeout=0.5)
    face = store.asyncio()
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(StoreUnavailable):
            store.load("g/k")
        with pytest.raises(StoreUnavailable):
            loop.run_until_complete(face.load("g/k"))
        node.start()
        redis_cli = shutil.which("redis-cli") or "redis-cli"
        subprocess.run(
            [redis_cli, "-p", str(node.port), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        wait_for(lambda: _cluster_ok(node.port), "the one-node Cluster")
        store.create("g/k", b"h", {"a": "1"}, 60, "g/alice")
        assert loop.run_until_complete(face.load("g/k")) == (b"h", {"a": "1"})
        assert store.user_sessions("g/alice") == [("g/k", b"h")]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        store.close()
        node.close()


def _cluster_ok(port: int) -> bool:
    client: Any = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.cluster("info")["cluster_state"] == "ok")
    finally:
        client.close()
