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
                assert store.update("shared", change(b"h", {f"t{n}-{r}": "1"}, ttl=600))
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
    store.create("k", b"h", {"a": "1"}, 60, None)
    loaded = store.load("k")
    assert loaded is not None
    store.update("k", change(b"h2", {"a": "2", "b": "3"}))
    assert dict(loaded[1]) == {"a": "1"}


def test_past_max_sessions_the_least_recently_written_go_first() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, max_sessions=3)
    store.create("g/a", b"a", {}, 600, "g/alice")
    store.create("g/b", b"b", {}, 600, None)
    store.create("g/c", b"c", {}, 600, None)
    assert store.update("g/a", change(b"a2", ttl=600, user="g/alice"))  # a is written again: now the newest
    store.create("g/d", b"d", {}, 600, None)
    assert store.load("g/b") is None  # the one written longest ago went
    assert [store.load(key) is not None for key in ("g/a", "g/c", "g/d")] == [True, True, True]
    store.create("g/e", b"e", {}, 600, None)
    store.create("g/f", b"f", {}, 600, None)
    assert store.load("g/a") is None
    assert store.user_sessions("g/alice") == []  # an evicted session leaves its user's registry
    assert len(store) == 3


def test_a_flood_of_new_sessions_stays_within_the_bound() -> None:
    store = MemoryStore(max_sessions=1000)
    for n in range(50_000):
        store.create(f"g/{n}", b"h", {"csrf": '"token"'}, 600, None)
    assert len(store) == 1000
    assert store.load("g/49999") is not None
    assert store.load("g/0") is None


def test_max_sessions_must_be_a_positive_number() -> None:
    import pytest

    from sessionware import ConfigurationError

    for bad in (0, -1, 1.5, "many"):
        with pytest.raises(ConfigurationError, match="max_sessions"):
            MemoryStore(max_sessions=bad)  # type: ignore[arg-type]
    assert len(MemoryStore(max_sessions=None)) == 0
