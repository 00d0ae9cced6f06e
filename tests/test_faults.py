"""Store failures fail closed and recover without a restart (SW-39).

Each test runs a Redis or PostgreSQL server of its own on another loopback
port, and kills, stops or stalls that one by PID. Requests while it is down get
a 503 (never an anonymous session, never a log-out or revocation reported as
done); once it is back, the same app serves them again, with nothing lost.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from sessionware._contract import change
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import acall, build_app, call
from .servers import PostgresServer, RedisServer

UA = [("user-agent", "fault-test")]
T = TypeVar("T")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    # appendfsync always: what Redis acknowledged survives the SIGKILL
    server = RedisServer(
        None, "--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"
    ).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    try:
        from sessionware.stores.postgres import PostgresStore

        store = PostgresStore(server.dsn)
        store.migrate()
        store.close()
        yield server
    finally:
        server.close()


def redis_app(server: RedisServer) -> tuple[ASGIApp, Any]:
    from sessionware.stores.redis import RedisStore

    store = RedisStore(server.url, timeout=0.5)
    return build_app(store, FakeClock()), store


def postgres_app(server: PostgresServer) -> tuple[ASGIApp, Any]:
    from sessionware.stores.postgres import PostgresStore

    store = PostgresStore(server.dsn, timeout=1)
    return build_app(store, FakeClock()), store


def whoami(app: ASGIApp, cookie: str) -> Any:
    reply = call(app, "/whoami", cookie=cookie)
    return reply.status, (reply.json()["user"] if reply.status == 200 else None)


def assert_down_behaviour(app: ASGIApp, cookie: str) -> None:
    """What every request does while the store is unreachable."""
    started = time.monotonic()
    assert whoami(app, cookie) == (503, None)  # not anonymous: unavailable
    login = call(app, "/auth/mallory", headers=UA)
    assert (login.status, login.set_cookie) == (503, None)  # no cookie for a session that does not exist
    logout = call(app, "/drop", cookie=cookie)
    assert (logout.status, logout.set_cookie) == (503, None)  # a log-out that did not happen
    revoke = call(app, "/revoke-all/alice", cookie=cookie)
    assert revoke.status == 503  # a revocation that did not happen
    assert time.monotonic() - started < 15  # every call gave up within its timeout


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_redis_going_away_fails_closed_and_recovers_with_nothing_lost(
    redis_server: RedisServer, how: str
) -> None:
    app, store = redis_app(redis_server)
    cookie = call(app, "/auth/alice", headers=UA).cookie()
    assert whoami(app, cookie) == (200, "alice")
    getattr(redis_server, how)()
    assert_down_behaviour(app, cookie)
    redis_server.start()  # same port, same data directory
    assert whoami(app, cookie) == (200, "alice")  # no restart, and the session survived
    assert call(app, "/sessions/alice", cookie=cookie).status == 200
    assert call(app, "/drop", cookie=cookie).status == 200  # the retried log-out now happens
    assert whoami(app, cookie) == (200, None)
    store.close()


def test_a_stalled_redis_times_out_into_a_503(redis_server: RedisServer) -> None:
    import threading

    import redis

    app, store = redis_app(redis_server)
    cookie = call(app, "/auth/alice", headers=UA).cookie()
    staller = redis.Redis.from_url(redis_server.url)
    thread = threading.Thread(target=lambda: staller.execute_command("DEBUG", "SLEEP", "3"))  # type: ignore[no-untyped-call]
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    reply = call(app, "/whoami", cookie=cookie)
    elapsed = time.monotonic() - started
    thread.join()
    staller.close()
    assert reply.status == 503
    assert elapsed < 2.5  # the 0.5 s timeout, not the 3 s stall
    assert whoami(app, cookie) == (200, "alice")
    store.close()


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_postgres_going_away_fails_closed_and_recovers_with_nothing_lost(
    postgres_server: PostgresServer, how: str
) -> None:
    app, store = postgres_app(postgres_server)
    cookie = call(app, "/auth/alice", headers=UA).cookie()
    assert whoami(app, cookie) == (200, "alice")
    getattr(postgres_server, how)()
    assert_down_behaviour(app, cookie)
    postgres_server.start()
    assert whoami(app, cookie) == (200, "alice")  # no restart of the app, the row survived
    assert call(app, "/drop", cookie=cookie).status == 200
    assert whoami(app, cookie) == (200, None)
    store.close()


def test_a_locked_postgres_table_times_out_into_a_503(postgres_server: PostgresServer) -> None:
    import psycopg

    app, store = postgres_app(postgres_server)
    cookie = call(app, "/auth/alice", headers=UA).cookie()
    with psycopg.connect(postgres_server.dsn) as blocker:
        blocker.execute("LOCK TABLE sessionware_sessions IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        reply = call(app, "/whoami", cookie=cookie)
        elapsed = time.monotonic() - started
    assert reply.status == 503
    assert elapsed < 4  # the 0.9 s statement timeout (StoreBusy, never sent again), not the lock's lifetime
    assert whoami(app, cookie) == (200, "alice")
    store.close()


def test_the_sync_faces_raise_store_unavailable_too(
    redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    from sessionware import StoreUnavailable
    from sessionware.stores.postgres import PostgresStore
    from sessionware.stores.redis import RedisStore

    redis_store = RedisStore(redis_server.url, timeout=0.5)
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        redis_store.load("g/k")
    with pytest.raises(StoreUnavailable):
        redis_store.delete_user_sessions("g/alice", None)
    redis_store.close()
    dead = PostgresStore("postgresql://postgres@127.0.0.1:1/postgres", timeout=0.5)
    with pytest.raises(StoreUnavailable):
        dead.load("g/k")
    dead.close()


def timed(function: Callable[[], T], limit: float) -> tuple[T, float]:
    """``function()`` on a thread of its own: its result and how long it took.

    Fails (rather than hanging the suite) if it has not returned within ``limit`` seconds.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"still waiting after {limit} s: the call hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], elapsed


PG_TIMEOUT = 1.0
MARGIN = 1.5  # scheduling slack on a loaded CI machine; far below a hang


def test_a_frozen_postgres_fails_closed_within_the_timeout_and_recovers(
    postgres_server: PostgresServer,
) -> None:
    """SIGSTOPped, the server keeps its sockets open and answers nothing: only a
    client-side deadline ends the wait (statement_timeout runs on the server).
    One event loop throughout, as in a server, so requests reuse pooled connections."""
    app, store = postgres_app(postgres_server)
    stopped: list[int] = []

    async def main() -> list[tuple[str, int, str | None, float]]:
        cookie = (await acall(app, "/auth/alice", headers=UA)).cookie()
        assert (await acall(app, "/whoami", cookie=cookie)).json()["user"] == "alice"
        seen = []
        stopped.extend(postgres_server.freeze())
        for path, headers in (("/whoami", []), ("/auth/mallory", UA), ("/drop", [])):
            started = time.monotonic()
            reply = await acall(app, path, cookie=cookie, headers=headers)
            seen.append((path, reply.status, reply.set_cookie, time.monotonic() - started))
        postgres_server.thaw(stopped)
        reply = await acall(app, "/whoami", cookie=cookie)
        assert (reply.status, reply.json()["user"]) == (200, "alice")  # nothing lost, no restart
        await store.asyncio().aclose()
        return seen

    try:
        seen, _ = timed(lambda: asyncio.run(main()), 20)
    finally:
        postgres_server.thaw(stopped)
    for path, status, set_cookie, elapsed in seen:
        assert (status, set_cookie) == (503, None), path
        assert elapsed < PG_TIMEOUT + MARGIN, (path, elapsed)
    store.close()


def test_the_sync_face_of_a_frozen_postgres_fails_closed_within_the_timeout(
    postgres_server: PostgresServer,
) -> None:
    from sessionware import StoreUnavailable
    from sessionware.stores.postgres import PostgresStore

    store = PostgresStore(postgres_server.dsn, timeout=PG_TIMEOUT)
    store.create("g/frozen", b"data", {}, 600, None)
    store.create("g/frozen-other", b"other", {}, 600, None)
    assert store.load("g/frozen") == (b"data", {})  # a pooled connection, ready to hang
    with postgres_server.frozen():
        # The first call hangs on the pooled connection; the others must connect,
        # to a server whose kernel accepts the TCP connection but which never answers.
        for operation in (
            lambda: store.update("g/frozen", change(b"new", {"a": "1"})),
            lambda: store.load("g/frozen"),
            lambda: store.delete("g/frozen-other"),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=f"within {PG_TIMEOUT} s"):
                timed(operation, 10)
            assert time.monotonic() - started < PG_TIMEOUT + MARGIN
    # A statement already in the server's socket buffer when the client gave up
    # still runs once the server resumes: StoreUnavailable means "not known to
    # be done", never "done".
    assert store.load("g/frozen") in ((b"data", {}), (b"new", {"a": "1"}))
    store.create("g/frozen-after", b"after", {}, 600, None)
    assert store.load("g/frozen-after") == (b"after", {})
    store.close()


def test_the_asyncio_face_of_a_frozen_postgres_fails_closed_within_the_timeout(
    postgres_server: PostgresServer,
) -> None:
    from sessionware import StoreUnavailable
    from sessionware.stores.postgres import PostgresStore

    store = PostgresStore(postgres_server.dsn, timeout=PG_TIMEOUT)
    face = store.asyncio()
    stopped: list[int] = []

    async def main() -> list[float]:
        await face.create("g/frozen-async", b"data", {}, 600, None)
        assert await face.load("g/frozen-async") == (b"data", {})  # a pooled connection, ready to hang
        stopped.extend(postgres_server.freeze())
        took = []
        for operation in (  # the first hangs on the pooled connection, the others must connect
            lambda: face.update("g/frozen-async", change(b"new", {"a": "1"})),
            lambda: face.load("g/frozen-async"),
            lambda: face.delete("g/frozen-async"),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=f"within {PG_TIMEOUT} s"):
                await operation()
            took.append(time.monotonic() - started)
        postgres_server.thaw(stopped)
        # The update was sent (it may run now: StoreUnavailable is "not known to be done");
        # the delete never was, for want of a connection.
        assert await face.load("g/frozen-async") in ((b"data", {}), (b"new", {"a": "1"}))
        await face.aclose()
        return took

    try:
        took, _ = timed(lambda: asyncio.run(main()), 20)
    finally:
        postgres_server.thaw(stopped)
    assert all(elapsed < PG_TIMEOUT + MARGIN for elapsed in took), took
    store.close()


def test_after_a_postgres_restart_the_first_requests_succeed(postgres_server: PostgresServer) -> None:
    """The pool holds connections the restart killed; none of them fails a request,
    not even a delete (which is never re-sent: a repeat would misreport it)."""
    import psycopg

    from sessionware.stores.postgres import PostgresStore

    with psycopg.connect(postgres_server.dsn, autocommit=True) as observer:
        since = observer.execute("SELECT now()").fetchone()
        store = PostgresStore(postgres_server.dsn, timeout=2, max_size=3)
        store.create("g/restart-1", b"one", {}, 600, None)
        store.create("g/restart-2", b"two", {}, 600, None)
        barrier = threading.Barrier(3)  # three calls at once: three connections
        threads = [
            threading.Thread(target=store._run, args=(lambda connection: barrier.wait(),)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        opened = "SELECT count(*) FROM pg_stat_activity WHERE backend_start > %s AND pid <> pg_backend_pid()"
        assert observer.execute(opened, since).fetchone() == (3,)  # all in the pool, about to die
    postgres_server.restart()
    assert store.load("g/restart-1") == (b"one", {})
    assert store.delete("g/restart-2") is True
    assert store.update("g/restart-1", change(b"uno")) is True
    store.close()


def test_after_a_postgres_restart_an_app_in_a_long_lived_loop_serves_at_once(
    postgres_server: PostgresServer,
) -> None:
    app, store = postgres_app(postgres_server)

    async def main() -> None:
        cookie = (await acall(app, "/auth/alice", headers=UA)).cookie()
        replies = await asyncio.gather(*(acall(app, "/whoami", cookie=cookie) for _ in range(3)))
        assert [reply.status for reply in replies] == [200] * 3  # three idle connections now
        await asyncio.to_thread(postgres_server.restart)
        reply = await acall(app, "/whoami", cookie=cookie)
        assert (reply.status, reply.json()["user"]) == (200, "alice")
        assert (await acall(app, "/drop", cookie=cookie)).status == 200
        reply = await acall(app, "/whoami", cookie=cookie)
        assert (reply.status, reply.json()["user"]) == (200, None)
        await store.asyncio().aclose()

    asyncio.run(main())
    store.close()


def test_a_connection_cut_as_its_answer_came_is_never_handed_to_another_call() -> None:
    """The deadline passes while a call still holds its connection (here: Python busy after the
    statement): the call keeps its result, and the cut connection is closed, not pooled."""
    from sessionware.stores.postgres import PostgresStore

    from .servers import POSTGRES_DSN

    table = f"sessionware_cut_test_{os.getpid()}"
    store = PostgresStore(POSTGRES_DSN, timeout=0.3, table=table)
    store.migrate()
    held: list[Any] = []

    def slow(connection: Any) -> int:
        held.append(connection)
        value = int(connection.execute("SELECT 7").fetchone()[0])
        time.sleep(0.8)  # past the deadline: the watchdog cuts the idle connection now
        return value

    try:
        assert store._run(slow) == 7
        assert held[0].closed  # never back in the pool
        store.create("g/after-cut", b"x", {}, 60, None)  # the next calls get a sound connection
        assert store.load("g/after-cut") == (b"x", {})
    finally:
        store._run(lambda connection: connection.execute(f"DROP TABLE {table}"))
        store.close()
