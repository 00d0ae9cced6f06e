"""SQLiteStore beyond the contract: processes, locks, purging, the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sessionware import ConfigurationError, SQLiteStore, StoreBusy
from sessionware.testing import FakeClock, change
from sessionware.typing import StoredRecord

from ..conftest import build_app, call

ROOT = Path(__file__).resolve().parents[2]


def test_several_processes_writing_one_record_keep_every_field(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    store.create("shared", b"h", {"start": "1"}, 600, None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.stores.sqlite_worker", path, "shared", f"p{n}", "150"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        assert out.strip() == "150"  # every update found the record: none failed, none retried
    loaded = store.load("shared")
    assert loaded is not None
    assert dict(loaded[1]) == {"start": "1"} | {f"p{n}-{i}": f"{i}" for n in range(4) for i in range(150)}


def test_the_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "wal.db")
    with sqlite3.connect(tmp_path / "wal.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_purge_removes_only_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=0)
    store.create("short", b"1", {}, 10, None)
    store.create("long", b"2", {}, 1000, None)
    clock.advance(11)
    assert store.purge_expired() == 1
    assert store.load("long") is not None
    with sqlite3.connect(tmp_path / "p.db") as connection:
        assert connection.execute("SELECT count(*) FROM sessionware_sessions").fetchone()[0] == 1


def test_writes_purge_expired_rows_every_purge_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=300)
    for n in range(50):
        store.create(f"old-{n}", b"x", {}, 10, None)
    clock.advance(301)
    store.create("new", b"y", {}, 10, None)
    with sqlite3.connect(tmp_path / "p.db") as connection:
        assert connection.execute("SELECT count(*) FROM sessionware_sessions").fetchone()[0] == 1


def test_a_lock_held_past_the_timeout_raises_store_busy_not_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "locked.db", timeout=0.2)
    store.create("k", b"v", {}, 60, None)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreBusy, match=r"stayed locked for 0\.2 s"):
            store.update("k", change(b"v2"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.update("k", change(b"v2")) is True  # recovers on its own


def test_a_locked_database_answers_503_and_recovers(tmp_path: Path) -> None:
    app = build_app(SQLiteStore(tmp_path / "app.db", timeout=0.2), FakeClock())
    cookie = call(app, "/write/a/1").cookie()
    blocker = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        reply = call(app, "/write/a/2", cookie=cookie)
        assert reply.status == 503
        assert reply.set_cookie is None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert call(app, "/write/a/3", cookie=cookie).status == 200
    assert call(app, "/read/a", cookie=cookie).json() == {"value": 3}


def test_a_locked_database_never_blocks_the_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "loop.db", timeout=5).asyncio()
    blocker = sqlite3.connect(tmp_path / "loop.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        blocker.execute("ROLLBACK")
        blocker.close()

    threading.Timer(0.5, release).start()

    async def scenario() -> tuple[int, bool]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        await store.create("k", b"v", {}, 60, None)  # waits about 0.5 s for the lock, in a thread
        saved = await store.update("k", change(b"v2"))
        done = True
        await task
        assert time.monotonic() - started >= 0.4
        return ticks, saved

    ticks, saved = asyncio.run(scenario())
    assert saved is True
    assert ticks >= 20  # the loop kept running while the store waited


@pytest.mark.parametrize("path", [":memory:", "file::memory:?cache=shared"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="MemoryStore"):
        SQLiteStore(path)


def test_a_bad_table_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="table"):
        SQLiteStore("x.db", table="sessions; DROP TABLE users")


def test_an_unusable_path_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="could not open"):
        SQLiteStore(tmp_path / "missing-dir" / "sessions.db")


def test_a_failed_purge_never_fails_the_write_that_triggered_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=60)
    store._sql_expired = "SELECT key FROM no_such_table WHERE ? AND ?"  # housekeeping that fails
    clock.advance(61)
    store.create("k", b"v", {}, 60, None)
    assert store.load("k") is not None
    assert any("could not purge" in record.getMessage() for record in caplog.records)


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    """sqlite3 connections must not cross fork(): the child notices the new PID and reopens."""
    import multiprocessing

    from .sqlite_worker import forked

    store = SQLiteStore(tmp_path / "fork.db")
    store.create("k", b"parent", {}, 600, None)
    inherited = id(store._waiting.get())  # opened by this process, before the fork
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=forked, args=(store, "k", sender))
    child.start()
    sender.close()
    assert receiver.poll(30), "the child reported nothing"
    used = receiver.recv()
    child.join(30)
    assert child.exitcode == 0
    assert used != inherited
    assert store.load("k") == (b"child", {"child": "1"})
    assert id(store._waiting.get()) == inherited  # the parent keeps its own


def test_making_the_store_leaves_no_connection_open_in_the_making_process(tmp_path: Path) -> None:
    """A forking server's master makes the store: its workers must inherit no open database."""
    import os

    path = tmp_path / "master.db"
    SQLiteStore(path)
    fds = os.listdir("/proc/self/fd")
    opened = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not any(name.startswith(str(path.resolve())) for name in opened)


def test_on_the_event_loop_an_unlocked_database_is_used_inline_without_a_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "inline.db")
    face = store.asyncio()
    threads: set[int] = set()
    original = store._load

    def recording(cursor: sqlite3.Cursor, key: str) -> StoredRecord | None:
        threads.add(threading.get_ident())
        return original(cursor, key)

    store._load = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        await face.create("k", b"h", {"a": "1"}, 60, None)
        assert await face.update("k", change(b"h2", {"b": "2"}))
        assert await face.load("k") == (b"h2", {"a": "1", "b": "2"})
        assert await face.delete("k") is True

    asyncio.run(scenario())
    assert threads == {threading.get_ident()}
    assert face._executor is None  # no thread pool was ever needed


def test_a_write_that_finds_the_database_locked_moves_to_a_thread_and_lands_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "moved.db", timeout=5)
    face = store.asyncio()
    store.create("k", b"h", {"n": "0"}, 60, None)
    blocker = sqlite3.connect(tmp_path / "moved.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")

    def release() -> None:
        blocker.execute("ROLLBACK")
        blocker.close()

    threading.Timer(0.3, release).start()

    async def scenario() -> bool:
        return await face.update("k", change(b"h2", {"m": "1"}))

    assert asyncio.run(scenario()) is True
    assert face._executor is not None
    assert store.load("k") == (b"h2", {"n": "0", "m": "1"})


def test_the_event_loop_never_checkpoints_the_log_the_thread_pool_does(tmp_path: Path) -> None:
    from sessionware.stores import sqlite as module

    store = SQLiteStore(tmp_path / "wal.db")
    face = store.asyncio()
    checkpoints: list[int] = []
    original = store.checkpoint

    def recording() -> None:
        checkpoints.append(threading.get_ident())
        original()

    store.checkpoint = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        await face.create("k", b"h", {}, 600, None)
        for n in range(module._CHECKPOINT_EVERY):
            await face.update("k", change(b"h", {"n": f"{n}"}, ttl=600))

    asyncio.run(scenario())
    assert face._executor is not None
    face._executor[1].shutdown(wait=True)
    assert len(checkpoints) == 1
    assert checkpoints[0] != threading.get_ident()
    inline = face.inline._connections.get()
    assert inline.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0


def test_a_table_from_the_earlier_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE sessionware_sessions (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
            "version INTEGER NOT NULL, user_key TEXT, expires_at INTEGER NOT NULL)"
        )
    with pytest.raises(ConfigurationError, match="delete the file"):
        SQLiteStore(path)


def test_a_record_whose_fields_do_not_decode_loads_as_absent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "bad.db")
    store.create("k", b"h", {"a": "1"}, 60, None)
    with sqlite3.connect(tmp_path / "bad.db") as connection:
        connection.execute("UPDATE sessionware_sessions SET data = 'not json'")
    assert store.load("k") is None
    assert any("does not decode" in record.getMessage() for record in caplog.records)


def test_connections_opened_while_another_store_writes_never_fail(tmp_path: Path) -> None:
    """New connections (a new event loop, a new thread, another process) set themselves up
    while other connections write: every call of every face succeeds, none is refused."""
    path = str(tmp_path / "s.db")
    writer = SQLiteStore(path)
    writer.create("g/k", b"h", {"a": "1"}, 600, None)
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                writer.update("g/k", change(b"h", {"n": str(n)}))
                if n % 10 == 0:
                    writer.checkpoint()
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

    def come_and_go() -> None:
        # A process that opens the file, writes and closes: the last connection to close
        # checkpoints the log and removes it, under an exclusive lock, as others open.
        while not stop.is_set():
            connection = sqlite3.connect(path, isolation_level=None, timeout=5)
            connection.execute("UPDATE sessionware_sessions SET expires_at = expires_at")
            connection.close()

    threads = [threading.Thread(target=write), threading.Thread(target=come_and_go)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(150):
            store = SQLiteStore(path)  # fresh connections on every face

            async def use(store: SQLiteStore = store) -> StoredRecord | None:
                face = store.asyncio()
                assert await face.update("g/k", change(b"h", {"x": "1"}))
                return await face.load("g/k")

            assert asyncio.run(use()) is not None
            assert store.load("g/k") is not None
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not failures, failures[:3]
