"""Helpers for testing apps and stores that use sessionware.

- :class:`FakeClock` -- a clock to pass as ``clock=`` to the middleware and
  the stores, moved by hand in expiry tests.
- :class:`StoreContract` -- the test suite every server-side store must pass.
  Subclass it in a pytest module and provide a ``store`` fixture::

      class TestMyStore(StoreContract):
          @pytest.fixture
          def store(self):
              return MyStore(...)

  Override :meth:`StoreContract.expire` if the store keeps time some other way
  than the wall clock (the built-in stores take a ``clock`` argument). Async
  stores pass the same suite: each call is run on an event loop the contract
  creates for the test.

This module imports pytest; it is meant for test code only.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ["FakeClock", "StoreContract"]


class FakeClock:
    """A clock that stands still until moved: ``clock()`` returns the current time.

    Example::

        clock = FakeClock()
        app = SessionMiddleware(app, secret_key_base=secret, clock=clock)
        clock.advance(31 * 60)  # half an hour and a minute later
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self.now += seconds

    def __repr__(self) -> str:
        return f"FakeClock({self.now})"


class StoreContract:
    """The behaviour every :class:`~sessionware.typing.Store` must show.

    Subclasses provide a ``store`` fixture. Keys used here are random, so the
    suite can run against a shared server.
    """

    # -- hooks -------------------------------------------------------------------

    @pytest.fixture
    def store(self) -> Any:  # pragma: no cover - subclasses provide it
        raise NotImplementedError("a StoreContract subclass must define a `store` fixture")

    def expire(self, store: Any, seconds: float) -> None:
        """Make ``seconds`` pass for ``store``. The default sleeps."""
        time.sleep(seconds)

    # -- plumbing ----------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _event_loop(self) -> Iterator[None]:
        self._loop: asyncio.AbstractEventLoop | None = None
        yield
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.close()

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        """Call a store method, running it on this test's event loop if it is async."""
        result = method(*args)
        if inspect.isawaitable(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(result)
        return result

    @staticmethod
    def key() -> str:
        import secrets

        return "contract-" + secrets.token_urlsafe(16)

    # -- the contract ------------------------------------------------------------

    def test_loading_an_unknown_key_finds_nothing_and_creates_nothing(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.load, key) is None
        assert self.call(store.load, key) is None
        assert self.call(store.save, key, b"data", 60, 1) is False, "a versioned save created a record"
        assert self.call(store.load, key) is None

    def test_a_new_record_is_saved_and_loaded_byte_for_byte(self, store: Any) -> None:
        key = self.key()
        data = bytes(range(256)) + b"\x00end"
        assert self.call(store.save, key, data, 60, None) is True
        loaded = self.call(store.load, key)
        assert loaded is not None
        assert loaded[0] == data
        assert isinstance(loaded[1], int)

    def test_a_save_with_the_current_version_writes_and_changes_the_version(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"one", 60, None)
        _, version = self.call(store.load, key)
        assert self.call(store.save, key, b"two", 60, version) is True
        data, new_version = self.call(store.load, key)
        assert data == b"two"
        assert new_version != version

    def test_a_save_with_a_stale_version_is_refused_and_changes_nothing(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"one", 60, None)
        _, first = self.call(store.load, key)
        assert self.call(store.save, key, b"two", 60, first) is True
        assert self.call(store.save, key, b"stale", 60, first) is False
        assert self.call(store.load, key)[0] == b"two"

    def test_saving_after_a_concurrent_delete_does_not_resurrect_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"alive", 60, None)
        _, version = self.call(store.load, key)
        self.call(store.delete, key)  # e.g. a log-out in another request
        assert self.call(store.save, key, b"late write", 60, version) is False
        assert self.call(store.load, key) is None

    def test_delete_removes_the_record_and_says_it_was_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 60, None)
        assert self.call(store.delete, key) is True
        assert self.call(store.load, key) is None

    def test_deleting_an_unknown_key_is_not_an_error_and_says_so(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.delete, key) is False
        assert self.call(store.delete, key) is False
        assert self.call(store.load, key) is None

    def test_deleting_an_expired_record_says_it_was_not_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 1, None)
        self.expire(store, 2.1)
        assert self.call(store.delete, key) is False

    def test_of_two_racing_deletes_exactly_one_finds_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 60, None)
        found: list[bool] = []
        barrier = threading.Barrier(2)

        def deleter() -> None:
            barrier.wait()
            found.append(self._call_in_thread(store.delete, key))

        threads = [threading.Thread(target=deleter) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(found) == [False, True]

    def test_a_record_is_not_returned_once_its_ttl_has_passed(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"short-lived", 1, None)
        assert self.call(store.load, key) is not None
        self.expire(store, 2.1)
        assert self.call(store.load, key) is None

    def test_an_expired_record_cannot_be_saved_back_with_its_old_version(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"short-lived", 1, None)
        _, version = self.call(store.load, key)
        self.expire(store, 2.1)
        assert self.call(store.save, key, b"revived?", 60, version) is False
        assert self.call(store.load, key) is None

    def test_a_versioned_save_sets_a_new_ttl(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"v1", 2, None)
        _, version = self.call(store.load, key)
        self.expire(store, 1.1)
        assert self.call(store.save, key, b"v2", 60, version) is True
        self.expire(store, 1.5)
        loaded = self.call(store.load, key)
        assert loaded is not None
        assert loaded[0] == b"v2"

    def test_keys_are_independent(self, store: Any) -> None:
        keys = [self.key() for _ in range(20)]
        for index, key in enumerate(keys):
            self.call(store.save, key, b"value-%d" % index, 60, None)
        self.call(store.delete, keys[0])
        assert self.call(store.load, keys[0]) is None
        for index, key in enumerate(keys[1:], start=1):
            assert self.call(store.load, key)[0] == b"value-%d" % index

    def test_large_records_survive(self, store: Any) -> None:
        key = self.key()
        data = bytes(range(256)) * 512  # 128 KiB
        self.call(store.save, key, data, 60, None)
        assert self.call(store.load, key)[0] == data

    def test_of_many_saves_racing_on_one_version_exactly_one_wins(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"start", 60, None)
        _, version = self.call(store.load, key)
        won: dict[int, bool] = {}
        barrier = threading.Barrier(8)

        def racer(n: int) -> None:
            barrier.wait()
            won[n] = self._call_in_thread(store.save, key, b"racer-%d" % n, 60, version)

        threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [n for n, result in won.items() if result]
        assert len(winners) == 1, won
        assert self.call(store.load, key)[0] == b"racer-%d" % winners[0]

    @staticmethod
    def _call_in_thread(method: Callable[..., Any], *args: Any) -> Any:
        result = method(*args)
        if inspect.isawaitable(result):
            return asyncio.run(result)  # type: ignore[arg-type]
        return result
