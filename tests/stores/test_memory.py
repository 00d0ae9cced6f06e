"""MemoryStore beyond the contract: bounded memory, threads."""

from __future__ import annotations

import threading

from sessionware import MemoryStore
from sessionware.testing import FakeClock, change


def test_expired_records_are_swept_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, sweep_interval=60)
    for n in range(1000):
        store.create(f"k{n}", b"x", {}, 30, None)
    assert len(store) == 1000
    clock.advance(61)
    store.create("fresh", b"y", {}, 30, None)
    assert len(store) == 1


def test_purge_expired_reports_what_it_removed() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.create("a", b"1", {}, 10, None)
    store.create("b", b"2", {}, 100, None)
    clock.advance(10)
    assert store.purge_expired() == 1
    loaded = store.load("b")
    assert loaded is not None
    assert loaded[0] == b"2"
    assert store.load("a") is None


def test_thirty_two_threads_hammering_the_store_lose_no_update() -> None:
    store = MemoryStore()
    store.create("shared", b"h", {}, 600, None)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for r in range(200):
                assert store.update("shared", change(b"h", {f"t{n}-{r}": b"1"}, ttl=600))
                store.create(f"{n}-{r}", b"x", {}, 1, None)
                store.delete(f"{n}-{r}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = store.load("shared")
    assert loaded is not None
    assert len(loaded[1]) == 32 * 200
    assert len(store) == 1


def test_a_loaded_record_is_not_changed_by_later_writes() -> None:
    """The fields a load hands out are a snapshot: the engine compares against them."""
    store = MemoryStore()
    store.create("k", b"h", {"a": b"1"}, 60, None)
    loaded = store.load("k")
    assert loaded is not None
    store.update("k", change(b"h2", {"a": b"2", "b": b"3"}))
    assert dict(loaded[1]) == {"a": b"1"}
