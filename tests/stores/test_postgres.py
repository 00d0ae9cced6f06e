"""PostgresStore beyond the contract: one statement per call, concurrency, layout, errors, outages.

The tests run a PostgreSQL of their own (tests/servers.py) with
pg_stat_statements loaded, so that what the server executed can be counted,
and so that it can be stopped and started by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection as Pipe
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from sessionware import StoreBusy, StoreError, StoreUnavailable
from sessionware._contract import change
from sessionware.stores.postgres import PostgresStore, migration_sql
from sessionware.typing import StoredRecord

from ..servers import PostgresServer, free_port

TABLE = "sessions"  # spelt out in the tests' own SQL
OUTAGE = 12.0  # seconds down: psycopg_pool's backoff would then wait 4-8 s more before reconnecting


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        server.restart()
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION pg_stat_statements")
            connection.execute(migration_sql(TABLE))
        yield server
    finally:
        server.close()


@pytest.fixture
def store(server: PostgresServer) -> Iterator[PostgresStore]:
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLE}")
    store = PostgresStore(server.dsn, table=TABLE, timeout=2)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for a test's asyncio calls, as in an app (its pool lives as long)."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())  # closes the store's pool for this loop
        loop.close()


class Executed:
    """The statements the server executed (pg_stat_statements), other than this class's own."""

    def __init__(self, dsn: str) -> None:
        self._connection = psycopg.connect(dsn, autocommit=True)

    def reset(self) -> None:
        self._connection.execute("SELECT pg_stat_statements_reset()")

    def statements(self) -> list[str]:
        rows = self._connection.execute(
            "SELECT query, calls FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
        ).fetchall()
        return [query for query, calls in rows for _ in range(calls)]

    def close(self) -> None:
        self._connection.close()


# -- one statement per call -----------------------------------------------------

USER = "g/alice"
KEY = "g/session"
#: name: (the call, on either face; the statement it must be; its answer)
OPERATIONS: dict[str, tuple[Callable[[Any], Any], str, Any]] = {
    "load": (lambda face: face.load(KEY), "SELECT head, data FROM", (b"h", {"a": "1"})),
    "create": (lambda face: face.create("g/new", b"h", {"a": "1"}, 60, USER), "INSERT INTO", None),
    "update": (lambda face: face.update(KEY, change(b"h2", {"b": "2"}, ["a"], user=USER)), "UPDATE", True),
    "update of a gone record": (lambda face: face.update("g/gone", change(b"h2")), "UPDATE", False),
    "delete": (lambda face: face.delete(KEY), "DELETE FROM", True),
    "user_sessions": (lambda face: face.user_sessions(USER), "SELECT key, head FROM", [(KEY, b"h")]),
    "delete_user_sessions": (lambda face: face.delete_user_sessions(USER, None), "DELETE FROM", 1),
}


@pytest.mark.parametrize("face", ["sync", "asyncio"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_every_call_is_one_statement(
    server: PostgresServer, store: PostgresStore, loop: asyncio.AbstractEventLoop, face: str, operation: str
) -> None:
    """No BEGIN/COMMIT, no read before the write, no retry: one statement, counted by the server."""
    run, verb, answer = OPERATIONS[operation]
    target: Any = store if face == "sync" else store.asyncio()

    def call() -> Any:
        result = run(target)
        return loop.run_until_complete(result) if face == "asyncio" else result

    store.create(KEY, b"h", {"a": "1"}, 60, USER)
    call()  # a pooled connection from now on (connecting sends no statement either)
    store.create(KEY, b"h", {"a": "1"}, 60, USER)  # as it was
    executed = Executed(server.dsn)
    try:
        executed.reset()
        assert call() == answer
        statements = executed.statements()
    finally:
        executed.close()
    assert len(statements) == 1, statements
    assert statements[0].startswith(verb), statements


def test_a_purge_is_one_statement_per_batch(server: PostgresServer, store: PostgresStore) -> None:
    store.create("g/expired", b"h", {}, 1, None)
    store.create("g/live", b"h", {}, 60, None)
    time.sleep(1.2)
    executed = Executed(server.dsn)
    try:
        executed.reset()
        assert store.purge_expired() == 1
        statements = executed.statements()
    finally:
        executed.close()
    assert len(statements) == 1, statements
    assert statements[0].startswith("DELETE FROM"), statements
    assert store.load("g/live") is not None


# -- what is stored ----------------------------------------------------------------


def test_field_values_are_kept_as_their_text_never_parsed(
    server: PostgresServer, store: PostgresStore
) -> None:
    """jsonb would normalise parsed JSON (1e+100 into an integer, key order and spacing lost)."""
    fields = {"big": "1e+100", "float": "1.0", "object": '{"b":1, "a":[ 2 ]}', "text": '"\\u00e9"'}
    store.create(KEY, b"h", fields, 60, None)
    loaded = store.load(KEY)
    assert loaded is not None
    assert dict(loaded[1]) == fields
    with psycopg.connect(server.dsn) as connection:
        kinds = connection.execute(
            "SELECT jsonb_typeof(value) FROM sessions, jsonb_each(data) AS field(name, value) WHERE key = %s",
            (KEY,),
        ).fetchall()
    assert kinds == [("string",)] * len(fields)


def test_64_asyncio_updates_and_16_threads_of_different_fields_are_all_kept(store: PostgresStore) -> None:
    """Many more writers than connections (10), on both faces at once: nothing lost, nothing refused."""
    store.create(KEY, b"h", {"start": "1"}, 60, None)
    barrier = threading.Barrier(17)
    answers: list[bool] = []

    async def burst() -> list[bool]:
        await asyncio.to_thread(barrier.wait)
        return await asyncio.gather(
            *(store.asyncio().update(KEY, change(b"a%d" % n, {f"async-{n}": f"{n}"})) for n in range(64))
        )

    def writer(n: int) -> None:
        barrier.wait()
        answers.append(store.update(KEY, change(b"s%d" % n, {f"sync-{n}": f"{n}"})))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    answers.extend(asyncio.run(burst()))
    for thread in threads:
        thread.join()
    assert answers == [True] * 80
    loaded = store.load(KEY)
    assert loaded is not None
    expected = {"start": "1"} | {f"async-{n}": f"{n}" for n in range(64)}
    assert dict(loaded[1]) == expected | {f"sync-{n}": f"{n}" for n in range(16)}


def test_pools_passed_in_are_used_and_left_to_their_owner(server: PostgresServer) -> None:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    pool = ConnectionPool(server.dsn, kwargs={"autocommit": True}, min_size=1, max_size=2, open=False)
    async_pool = AsyncConnectionPool(
        server.dsn, kwargs={"autocommit": True}, min_size=1, max_size=2, open=False
    )
    store = PostgresStore(pool=pool, async_pool=async_pool, table=TABLE)

    async def asynchronously() -> StoredRecord | None:
        assert await store.asyncio().update(KEY, change(b"async", {"b": "2"})) is True
        loaded = await store.asyncio().load(KEY)
        await async_pool.close()
        return loaded

    try:
        store.create(KEY, b"sync", {"a": "1"}, 60, None)
        assert asyncio.run(asynchronously()) == (b"async", {"a": "1", "b": "2"})
        assert store.load(KEY) == (b"async", {"a": "1", "b": "2"})
        assert pool.get_stats()["requests_num"] == 2  # the calls went through the pool given
        store.close()
        assert not pool.closed  # the store does not close what it did not open
    finally:
        pool.close()


# -- layout --------------------------------------------------------------------------

OLD_LAYOUT = """CREATE TABLE {table} (
    key text PRIMARY KEY,
    data bytea NOT NULL,
    version bigint NOT NULL,
    user_key text,
    expires_at timestamptz NOT NULL
)"""


def test_a_table_in_the_old_layout_gets_one_clear_error(
    server: PostgresServer, loop: asyncio.AbstractEventLoop
) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute(OLD_LAYOUT.format(table="sessions_v1"))
        connection.execute(
            "INSERT INTO sessions_v1 VALUES ('g/old', 'x', 1, NULL, now() + interval '1 hour')"
        )
    store = PostgresStore(server.dsn, table="sessions_v1")
    try:
        for operation in (
            store.migrate,
            lambda: store.load("g/old"),
            lambda: store.create("g/new", b"h", {}, 60, None),
            lambda: store.update("g/old", change(b"h")),
            lambda: store.user_sessions("g/alice"),
            lambda: loop.run_until_complete(store.asyncio().load("g/old")),
        ):
            with pytest.raises(StoreError) as caught:
                operation()
            message = str(caught.value)
            assert type(caught.value) is StoreError
            assert "'sessions_v1'" in message
            assert "`data bytea` and `version`" in message  # recognisably the old layout
            assert "python -m sessionware migrate --store postgresql://" in message  # what to do
            assert "does not exist" not in message  # not psycopg's "column ... does not exist"
    finally:
        store.close()
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("DROP TABLE sessions_v1")


def test_a_missing_table_names_the_real_migrate_command(server: PostgresServer) -> None:
    store = PostgresStore(server.dsn, table="never_migrated")
    with pytest.raises(StoreError) as caught:
        store.load("g/k")
    store.close()
    message = str(caught.value)
    assert "'never_migrated' does not exist" in message
    assert "python -m sessionware migrate --store postgresql://..." in message
    assert "--postgres" not in message


def test_migrate_is_idempotent_and_makes_the_layout_it_checks(server: PostgresServer) -> None:
    store = PostgresStore(server.dsn, table="migrated_twice")
    try:
        store.migrate()
        store.migrate()
        store.create("g/k", b"h", {"a": "1"}, 60, None)
        assert store.load("g/k") == (b"h", {"a": "1"})
    finally:
        store.close()
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("DROP TABLE migrated_twice")


def test_the_conninfos_own_server_options_are_kept(server: PostgresServer) -> None:
    """The store adds its statement_timeout to them: a search_path there still finds the table."""
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA app")
    store = PostgresStore(f"{server.dsn}?options=-c%20search_path%3Dapp", table="app_sessions", timeout=2)
    try:
        store.migrate()
        store.create("g/k", b"h", {}, 60, None)
        query = "SELECT current_schema(), current_setting('statement_timeout')"
        assert store._run(lambda c: c.execute(query).fetchone()) == ("app", "1800ms")
        assert store.load("g/k") == (b"h", {})
    finally:
        store.close()
        with psycopg.connect(server.dsn, autocommit=True) as connection:
            connection.execute("DROP SCHEMA app CASCADE")


# -- errors --------------------------------------------------------------------------


def test_a_row_locked_past_the_timeout_is_store_busy_not_unavailable(
    server: PostgresServer, loop: asyncio.AbstractEventLoop
) -> None:
    """Another transaction holds the session's row: writes wait for the statement timeout
    (90% of the store's), then fail as contention; reads do not wait; the store is fine after."""
    store = PostgresStore(server.dsn, table=TABLE, timeout=1)
    store.create(KEY, b"h", {"a": "1"}, 60, None)
    aface = store.asyncio()
    writes: list[Callable[[], bool]] = [
        lambda: store.update(KEY, change(b"h2", {"b": "2"})),
        lambda: store.delete(KEY),
        lambda: loop.run_until_complete(aface.update(KEY, change(b"h2", {"b": "2"}))),
        lambda: loop.run_until_complete(aface.delete(KEY)),
    ]
    try:
        with psycopg.connect(server.dsn) as locker:  # not autocommit: the lock lasts until the block ends
            locker.execute("SELECT 1 FROM sessions WHERE key = %s FOR UPDATE", (KEY,))
            for operation in writes:
                started = time.monotonic()
                with pytest.raises(StoreBusy, match=f"a lock on the table '{TABLE}' stayed held"):
                    operation()
                assert 0.8 < time.monotonic() - started < 1.0  # the server's 0.9 s, before the client's 1 s
            assert store.load(KEY) == (b"h", {"a": "1"})
        assert store.update(KEY, change(b"h2", {"b": "2"})) is True
        assert loop.run_until_complete(aface.delete(KEY)) is True
    finally:
        store.close()
    assert not issubclass(StoreBusy, StoreUnavailable)  # contention is never reported as an outage


# -- outages -------------------------------------------------------------------------


def test_after_an_outage_the_next_call_succeeds_at_once(
    server: PostgresServer, loop: asyncio.AbstractEventLoop
) -> None:
    """Down for OUTAGE seconds, with calls failing meanwhile as requests would; once the server
    is back, the very next call works, on both faces: no reconnection backoff to wait out."""
    store = PostgresStore(server.dsn, table=TABLE, timeout=1)
    faces: dict[str, Callable[[], Any]] = {
        "sync": lambda: store.load("g/k"),
        "asyncio": lambda: loop.run_until_complete(store.asyncio().load("g/k")),
    }
    try:
        for call in faces.values():
            assert call() is None  # a pooled connection, about to die
        server.stop()
        down_until = time.monotonic() + OUTAGE
        while time.monotonic() < down_until:
            for call in faces.values():
                with pytest.raises(StoreUnavailable):
                    call()
            time.sleep(0.25)
        server.start()
        for name, call in faces.items():
            started = time.monotonic()
            assert call() is None, name
            assert time.monotonic() - started < 1, name
    finally:
        store.close()
        if server.process is not None and server.process.poll() is not None:
            server.start()


def test_starting_with_the_database_down_logs_one_line_and_fails_fast(
    caplog: pytest.LogCaptureFixture, loop: asyncio.AbstractEventLoop
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()  # nothing listens there
    store = PostgresStore(f"postgresql://postgres:hunter2@127.0.0.1:{port}/app", timeout=5)
    expected = (
        f"PostgresStore: cannot connect to postgresql://postgres@127.0.0.1:{port}/app: Connection refused"
    )
    try:
        for call in (
            lambda: store.load("g/k"),
            lambda: store.delete("g/k"),
            lambda: loop.run_until_complete(store.asyncio().load("g/k")),
            lambda: loop.run_until_complete(store.asyncio().delete("g/k")),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert time.monotonic() - started < 1  # not the 5 s timeout: refused is known at once
            assert str(caught.value) == expected
        time.sleep(1.5)  # room for anything logging in the background
    finally:
        store.close()
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [("WARNING", expected)]
    assert "hunter2" not in caplog.text


def test_the_line_logged_for_an_outage_is_followed_by_one_when_it_ends(
    server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore(server.dsn, table=TABLE, timeout=1)
    try:
        assert store.load("g/k") is None
        server.stop()
        caplog.set_level(logging.INFO)
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                store.load("g/k")
        server.start()
        assert store.load("g/k") is None
        assert store.load("g/k") is None
    finally:
        store.close()
        if server.process is not None and server.process.poll() is not None:
            server.start()
    where = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    assert [record.getMessage() for record in caplog.records if record.name == "sessionware"] == [
        f"PostgresStore: cannot connect to {where}: Connection refused",
        f"PostgresStore: connected to {where} again",
    ]


def test_the_watchdog_cuts_each_call_at_its_own_deadline_whatever_was_armed_before() -> None:
    """The sync face's watchdog thread is woken only for an earlier deadline than it knows:
    a short one armed after a long one (even one already disarmed) must still be kept."""
    from sessionware.stores._postgres_pools import WATCHDOG as _WATCHDOG

    def connection(sock: socket.socket) -> Any:  # what _cut() uses of a psycopg connection
        return SimpleNamespace(pgconn=SimpleNamespace(socket=sock.fileno()))

    pairs = [socket.socketpair() for _ in range(3)]
    try:
        started = time.monotonic()
        _WATCHDOG.disarm(_WATCHDOG.arm(started + 30, connection(pairs[0][0])))  # a call that ended
        long = _WATCHDOG.arm(started + 30, connection(pairs[1][0]))  # one that is still running
        time.sleep(0.1)  # the thread now sleeps until the long deadline
        short = _WATCHDOG.arm(started + 0.3, connection(pairs[2][0]))
        pairs[2][1].settimeout(5)
        assert pairs[2][1].recv(1) == b""  # the far end sees the cut
        assert 0.25 < time.monotonic() - started < 1.5
        assert _WATCHDOG.disarm(short) is True  # reported as cut
        assert _WATCHDOG.disarm(long) is False
        pairs[1][1].setblocking(False)
        with pytest.raises(BlockingIOError):
            pairs[1][1].recv(1)  # not cut: still open, nothing to read
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


# -- processes -----------------------------------------------------------------------


def _in_child(store: PostgresStore, report: Pipe) -> None:
    """In a child made by fork(): use the parent's store object; report the backend it talked to."""
    store.create("g/child", b"child", {}, 60, None)
    report.send(store._run(lambda connection: connection.info.backend_pid))
    report.close()


def test_a_forked_child_uses_connections_of_its_own_and_leaves_the_parents_alone(
    store: PostgresStore,
) -> None:
    parent = store._run(lambda connection: connection.info.backend_pid)  # now idle in the pool
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    with contextlib.closing(receiver):
        child = context.Process(target=_in_child, args=(store, sender))
        child.start()
        sender.close()
        assert receiver.poll(30), "the child reported nothing"
        used = receiver.recv()
        child.join(30)
    assert child.exitcode == 0
    assert used != parent
    assert store.load("g/child") == (b"child", {})
    assert store._run(lambda connection: connection.info.backend_pid) == parent  # still alive, still ours
