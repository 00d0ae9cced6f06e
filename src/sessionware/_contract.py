"""The store contract suites: what every sessionware store must do (public as ``sessionware.testing``).

Subclass :class:`StoreContract` (or :class:`RegistryContract`) in a pytest
module and provide a ``store`` fixture; see :mod:`sessionware.testing`.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ["RegistryContract", "StoreContract"]


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
            loop.run_until_complete(loop.shutdown_asyncgens())  # closes per-loop clients
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

        return "contract-" + secrets.token_urlsafe(16)

    # -- the contract ------------------------------------------------------------

    def test_loading_an_unknown_key_finds_nothing_and_creates_nothing(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.load, key) is None
        assert self.call(store.load, key) is None
        assert self.call(store.save, key, b"data", 60, 1, None) is False, "a versioned save created a record"
        assert self.call(store.load, key) is None

    def test_a_new_record_is_saved_and_loaded_byte_for_byte(self, store: Any) -> None:
        key = self.key()
        data = bytes(range(256)) + b"\x00end"
        assert self.call(store.save, key, data, 60, None, None) is True
        loaded = self.call(store.load, key)
        assert loaded is not None
        assert loaded[0] == data
        assert isinstance(loaded[1], int)

    def test_a_save_with_the_current_version_writes_and_changes_the_version(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"one", 60, None, None)
        _, version = self.call(store.load, key)
        assert self.call(store.save, key, b"two", 60, version, None) is True
        data, new_version = self.call(store.load, key)
        assert data == b"two"
        assert new_version != version

    def test_a_save_with_a_stale_version_is_refused_and_changes_nothing(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"one", 60, None, None)
        _, first = self.call(store.load, key)
        assert self.call(store.save, key, b"two", 60, first, None) is True
        assert self.call(store.save, key, b"stale", 60, first, None) is False
        assert self.call(store.load, key)[0] == b"two"

    def test_saving_after_a_concurrent_delete_does_not_resurrect_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"alive", 60, None, None)
        _, version = self.call(store.load, key)
        self.call(store.delete, key)  # e.g. a log-out in another request
        assert self.call(store.save, key, b"late write", 60, version, None) is False
        assert self.call(store.load, key) is None

    def test_delete_removes_the_record_and_says_it_was_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 60, None, None)
        assert self.call(store.delete, key) is True
        assert self.call(store.load, key) is None

    def test_deleting_an_unknown_key_is_not_an_error_and_says_so(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.delete, key) is False
        assert self.call(store.delete, key) is False
        assert self.call(store.load, key) is None

    def test_deleting_an_expired_record_says_it_was_not_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 1, None, None)
        self.expire(store, 1.3)
        assert self.call(store.delete, key) is False

    def test_of_two_racing_deletes_exactly_one_finds_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"x", 60, None, None)
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
        self.call(store.save, key, b"short-lived", 1, None, None)
        assert self.call(store.load, key) is not None
        self.expire(store, 1.3)
        assert self.call(store.load, key) is None

    def test_an_expired_record_cannot_be_saved_back_with_its_old_version(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"short-lived", 1, None, None)
        _, version = self.call(store.load, key)
        self.expire(store, 1.3)
        assert self.call(store.save, key, b"revived?", 60, version, None) is False
        assert self.call(store.load, key) is None

    def test_a_versioned_save_sets_a_new_ttl(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"v1", 2, None, None)
        _, version = self.call(store.load, key)
        self.expire(store, 1.1)
        assert self.call(store.save, key, b"v2", 60, version, None) is True
        self.expire(store, 1.5)
        loaded = self.call(store.load, key)
        assert loaded is not None
        assert loaded[0] == b"v2"

    def test_keys_are_independent(self, store: Any) -> None:
        keys = [self.key() for _ in range(20)]
        for index, key in enumerate(keys):
            self.call(store.save, key, b"value-%d" % index, 60, None, None)
        self.call(store.delete, keys[0])
        assert self.call(store.load, keys[0]) is None
        for index, key in enumerate(keys[1:], start=1):
            assert self.call(store.load, key)[0] == b"value-%d" % index

    def test_large_records_survive(self, store: Any) -> None:
        key = self.key()
        data = bytes(range(256)) * 512  # 128 KiB
        self.call(store.save, key, data, 60, None, None)
        assert self.call(store.load, key)[0] == data

    def test_of_many_saves_racing_on_one_version_exactly_one_wins(self, store: Any) -> None:
        key = self.key()
        self.call(store.save, key, b"start", 60, None, None)
        _, version = self.call(store.load, key)
        won: dict[int, bool] = {}
        barrier = threading.Barrier(8)

        def racer(n: int) -> None:
            barrier.wait()
            won[n] = self._call_in_thread(store.save, key, b"racer-%d" % n, 60, version, None)

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


class RegistryContract(StoreContract):
    """The behaviour of a store's per-user registry (:class:`~sessionware.typing.Registry`)."""

    @staticmethod
    def user() -> str:

        group = secrets.token_urlsafe(8)[:11]
        return f"{group}/user-{secrets.token_hex(4)}"

    def key_for(self, user: str) -> str:
        """A session key in the same group as ``user``, as the engine makes them."""
        return user.split("/", 1)[0] + "/" + self.key()

    def listed(self, store: Any, user: str) -> dict[str, bytes]:
        return dict(self.call(store.user_sessions, user))

    def test_sessions_saved_for_a_user_are_listed_with_their_data(self, store: Any) -> None:
        user = self.user()
        keys = [self.key_for(user) for _ in range(3)]
        for n, key in enumerate(keys):
            self.call(store.save, key, b"session-%d" % n, 60, None, user)
        anonymous = self.key_for(user)
        self.call(store.save, anonymous, b"anonymous", 60, None, None)
        assert self.listed(store, user) == {key: b"session-%d" % n for n, key in enumerate(keys)}

    def test_users_are_listed_apart(self, store: Any) -> None:
        alice, bob = self.user(), self.user()
        self.call(store.save, self.key_for(alice), b"a", 60, None, alice)
        self.call(store.save, self.key_for(bob), b"b", 60, None, bob)
        assert list(self.listed(store, alice).values()) == [b"a"]
        assert list(self.listed(store, bob).values()) == [b"b"]
        assert self.listed(store, self.user()) == {}

    def test_a_deleted_session_leaves_the_listing(self, store: Any) -> None:
        user = self.user()
        gone, stays = self.key_for(user), self.key_for(user)
        self.call(store.save, gone, b"x", 60, None, user)
        self.call(store.save, stays, b"y", 60, None, user)
        assert self.call(store.delete, gone) is True
        assert list(self.listed(store, user)) == [stays]

    def test_an_expired_session_is_not_listed(self, store: Any) -> None:
        user = self.user()
        self.call(store.save, self.key_for(user), b"short", 1, None, user)
        long_lived = self.key_for(user)
        self.call(store.save, long_lived, b"long", 60, None, user)
        self.expire(store, 1.3)
        assert list(self.listed(store, user)) == [long_lived]

    def test_updates_keep_the_binding_and_can_move_it(self, store: Any) -> None:
        user, other = self.user(), self.user()
        key = self.key_for(user)
        self.call(store.save, key, b"v1", 60, None, user)
        _, version = self.call(store.load, key)
        assert self.call(store.save, key, b"v2", 60, version, user) is True
        assert self.listed(store, user) == {key: b"v2"}
        _, version = self.call(store.load, key)
        assert self.call(store.save, key, b"v3", 60, version, None) is True
        assert self.listed(store, user) == {}
        assert self.listed(store, other) == {}

    def test_revoking_all_of_a_users_sessions_spares_the_kept_one_and_other_users(self, store: Any) -> None:
        user, other = self.user(), self.user()
        keys = [self.key_for(user) for _ in range(4)]
        for key in keys:
            self.call(store.save, key, b"x", 60, None, user)
        theirs = self.key_for(other)
        self.call(store.save, theirs, b"other", 60, None, other)
        assert self.call(store.delete_user_sessions, user, keys[0]) == 3
        assert list(self.listed(store, user)) == [keys[0]]
        for key in keys[1:]:
            assert self.call(store.load, key) is None
        assert self.call(store.load, keys[0]) is not None
        assert self.call(store.load, theirs) is not None
        assert self.call(store.delete_user_sessions, user, None) == 1
        assert self.listed(store, user) == {}
        assert self.call(store.delete_user_sessions, user, None) == 0

    def test_a_save_racing_a_revocation_does_not_bring_the_session_back(self, store: Any) -> None:
        user = self.user()
        key = self.key_for(user)
        self.call(store.save, key, b"x", 60, None, user)
        _, version = self.call(store.load, key)
        self.call(store.delete_user_sessions, user, None)
        assert self.call(store.save, key, b"late", 60, version, user) is False
        assert self.call(store.load, key) is None
        assert self.listed(store, user) == {}
