"""RedisStore beyond the contract: its connection pool under a burst (SW-39)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessionware.testing import FakeClock

from ..conftest import acall, build_app, call, unique_prefix
from ..servers import ReplyDroppingProxy

UA = [("user-agent", "pool-test")]


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
def test_a_burst_larger_than_the_pool_waits_for_a_connection_instead_of_failing(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """40 requests at once on a pool of 2: each waits its turn (within the timeout)."""
    from sessionware.stores.redis import RedisStore

    if kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=unique_prefix(), max_connections=2)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        store = RedisStore(cluster.url, cluster=True, prefix=unique_prefix(), max_connections=2)
    request.addfinalizer(store.close)
    app = build_app(store, FakeClock())
    cookie = call(app, "/auth/alice", headers=UA).cookie()

    async def burst() -> list[Any]:
        replies = await asyncio.gather(*(acall(app, "/whoami", cookie=cookie) for _ in range(40)))
        await store.asyncio().aclose()
        return [(reply.status, reply.json()["user"] if reply.status == 200 else None) for reply in replies]

    assert asyncio.run(burst()) == [(200, "alice")] * 40


def test_the_sync_face_waits_for_a_pooled_connection_held_by_others(redis_url: str) -> None:
    """Every connection taken: a call waits for one to come back instead of failing."""
    from sessionware.stores.redis import RedisStore

    store = RedisStore(redis_url, prefix=unique_prefix(), timeout=5, max_connections=2)
    store.save("g/k", b"v", 60, None, None)
    client: Any = store.client
    pool = client.connection_pool
    held = [pool.get_connection(), pool.get_connection()]
    outcome: list[Any] = []

    def load() -> None:
        try:
            outcome.append(store.load("g/k"))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(0.2)  # the load is waiting (or has already failed)
    pool.release(held.pop())
    thread.join(10)
    assert outcome == [(b"v", 1)]
    pool.release(held.pop())
    store.close()


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
    from sessionware.stores.redis import _DELETE_ALL_SCRIPT, _DELETE_SCRIPT, RedisStore

    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix=unique_prefix(), timeout=2)
    store.save("g/warm-up", b"w", 60, None, "g/bob")
    store.delete("g/warm-up")  # the scripts are loaded: EVALSHA succeeds from here on
    store.delete_user_sessions("g/bob", None)
    for key in ("g/one", "g/two", "g/three"):
        store.save(key, b"v", 60, None, "g/alice")

    proxy.drop_reply_to(_DELETE_SCRIPT.sha.encode())
    assert store.delete("g/one") is True
    assert proxy.dropped.is_set()
    assert store.load("g/one") is None
    assert store.delete("g/one") is False  # a later delete still finds nothing

    proxy.drop_reply_to(_DELETE_ALL_SCRIPT.sha.encode())
    assert store.delete_user_sessions("g/alice", None) == 2
    assert proxy.dropped.is_set()

    async def asynchronously() -> None:
        face = store.asyncio()
        await face.save("g/four", b"v", 60, None, "g/carol")
        await face.save("g/five", b"v", 60, None, "g/carol")
        await face.save("g/six", b"v", 60, None, "g/carol")
        proxy.drop_reply_to(_DELETE_SCRIPT.sha.encode())
        assert await face.delete("g/four") is True
        assert proxy.dropped.is_set()
        proxy.drop_reply_to(_DELETE_ALL_SCRIPT.sha.encode())
        assert await face.delete_user_sessions("g/carol", None) == 2
        assert proxy.dropped.is_set()
        await face.aclose()

    asyncio.run(asynchronously())
    store.close()


@pytest.mark.parametrize(
    "command",
    [
        ("HMGET", "sw:{ab12}:s:cd34", "d", "v"),
        ("EVALSHA", "f" * 40, 1, "sw:{g}:s:k", "sw:", "k", b"\x00\x83payload\r\n", 86400000, "", 7),
        ("SET", "ключ", "значение"),
    ],
)
def test_commands_sent_straight_are_packed_as_redis_py_packs_them(command: tuple[Any, ...]) -> None:
    import redis.asyncio

    from sessionware.stores.redis import _pack

    expected = b"".join(redis.asyncio.Connection().pack_command(*command))
    assert _pack(command) == expected


def test_a_command_argument_redis_cannot_take_is_refused() -> None:
    from sessionware.stores.redis import _pack

    bad: Any
    for bad in (True, 1.5, None):
        with pytest.raises(TypeError):
            _pack(("SET", "k", bad))
