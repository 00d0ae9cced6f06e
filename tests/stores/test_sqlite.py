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

from sessionware import ConfigurationError, SQLiteStore, StoreUnavailable
from sessionware.stores._thread import InThread
from sessionware.testing import FakeClock

from ..conftest import build_app, call

ROOT = Path(__file__).resolve().parents[2]


def test_several_processes_share_one_file_without_losing_an_update(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    store.save("counter", b"0", 600, None, None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.stores.sqlite_worker", path, "counter", "150"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
    loaded = store.load("counter")
    assert loaded is not None
    assert loaded[0] == b"600"


def test_the_database_uses_write_ahead_logging(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "wal.db")
    with sqlite3.connect(tmp_path / "wal.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_purge_removes_only_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=0)
    store.save("short", b"1", 10, None, None)
    store.save("long", b"2", 1000, None, None)
    clock.advance(11)
    assert store.purge_expired() == 1
    assert store.load("long") is not None
    with sqlite3.connect(tmp_path / "p.db") as connection:
        assert connection.execute("SELECT count(*) FROM sessionware_sessions").fetchone()[0] == 1


def test_writes_purge_expired_rows_every_purge_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=300)
    for n in range(50):
        store.save(f"old-{n}", b"x", 10, None, None)
    clock.advance(301)
    store.save("new", b"y", 10, None, None)
    with sqlite3.connect(tmp_path / "p.db") as connection:
        assert connection.execute("SELECT count(*) FROM sessionware_sessions").fetchone()[0] == 1


def test_a_lock_held_past_the_timeout_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "locked.db", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.save("k", b"v", 60, None, None)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.save("k", b"v", 60, None, None) is True  # recovers on its own


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


def test_store_calls_never_block_the_event_loop(tmp_path: Path) -> None:
    store = InThread(SQLiteStore(tmp_path / "loop.db", timeout=5))
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
        saved = await store.save("k", b"v", 60, None, None)  # waits about 0.5 s for the lock
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


def test_a_failed_purge_never_fails_the_save_that_triggered_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "p.db", clock=clock, purge_interval=60)
    store._sql_purge = "DELETE FROM no_such_table"  # housekeeping that fails
    clock.advance(61)
    assert store.save("k", b"v", 60, None, None) is True
    assert store.load("k") is not None
    assert any("could not purge" in record.getMessage() for record in caplog.records)


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    """sqlite3 connections must not cross fork(): the child notices the new PID and reopens."""
    import multiprocessing

    from .sqlite_worker import forked

    store = SQLiteStore(tmp_path / "fork.db")
    store.save("k", b"parent", 600, None, None)
    inherited = id(store._connection())  # opened by this process, before the fork
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
    assert store.load("k") == (b"parent+child", 2)
    assert id(store._connection()) == inherited  # the parent keeps its own


def test_making_the_store_leaves_no_connection_open_in_the_making_process(tmp_path: Path) -> None:
    """A forking server's master makes the store: its workers must inherit no open database."""
    import os

    path = tmp_path / "master.db"
    SQLiteStore(path)
    fds = os.listdir("/proc/self/fd")
    opened = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not any(name.startswith(str(path.resolve())) for name in opened)
