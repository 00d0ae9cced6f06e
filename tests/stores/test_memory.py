"""MemoryStore beyond the contract: bounded memory, threads."""

from __future__ import annotations

import threading

from sessionware import MemoryStore
from sessionware.testing import FakeClock


def test_expired_records_are_swept_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, sweep_interval=60)
    for n in range(1000):
        store.save(f"k{n}", b"x", 30, None, None)
    assert len(store) == 1000
    clock.advance(61)
    store.save("fresh", b"y", 30, None, None)
    assert len(store) == 1


def test_purge_expired_reports_what_it_removed() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.save("a", b"1", 10, None, None)
    store.save("b", b"2", 100, None, None)
    clock.advance(10)
    assert store.purge_expired() == 1
    loaded = store.load("b")
    assert loaded is not None
    assert loaded[0] == b"2"
    assert store.load("a") is None


def test_thirty_two_threads_hammering_the_store_lose_no_update() -> None:
    store = MemoryStore()
    store.save("counter", b"0", 600, None, None)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for n in range(200):
                while True:
                    data, version = store.load("counter")  # type: ignore[misc]
                    if store.save("counter", str(int(data) + 1).encode(), 600, version, None):
                        break
                store.save(f"{threading.get_ident()}-{n}", b"x", 1, None, None)
                store.delete(f"{threading.get_ident()}-{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.load("counter")[0] == b"6400"  # type: ignore[index]
