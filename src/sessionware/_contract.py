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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from .typing import Change

__all__ = ["RegistryContract", "StoreContract", "change"]


def change(
    head: bytes,
    fields: Mapping[str, str] | None = None,
    removed: Sequence[str] = (),
    *,
    ttl: int = 60,
    user: str | None = None,
) -> Change:
    """A :class:`~sessionware.typing.Change` with the defaults the contract uses."""
    return Change(head, {} if fields is None else fields, tuple(removed), ttl, user)


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
        self._thread_loops = threading.local()
        self._all_loops: list[asyncio.AbstractEventLoop] = []
        yield
        loops = [*self._all_loops, *([self._loop] if self._loop is not None else [])]
        for loop in loops:
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

    HEAD = bytes(range(256)) + b"\x00head"
    FIELDS: ClassVar[dict[str, str]] = {
        "theme": '"dark"',
        "cart": '[1,2,{"x":null}]',
        "": "0",  # the empty key
        'quote\\"and\\\\back': "true",  # a name as JSON escapes it: quote"and\back
        "\\u00e9t\\u00e9": '"summer"',  # été
        "ascii": "".join(map(chr, range(32, 127))),  # every character a field's text may hold
    }

    def test_loading_an_unknown_key_finds_nothing_and_creates_nothing(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.load, key) is None
        assert self.call(store.load, key) is None
        assert self.call(store.update, key, change(b"h", {"a": "1"})) is False, "an update created a record"
        assert self.call(store.load, key) is None

    def test_a_new_record_is_loaded_byte_for_byte(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.create, key, self.HEAD, self.FIELDS, 60, None) is None
        head, fields = self.call(store.load, key)
        assert head == self.HEAD
        assert dict(fields) == self.FIELDS

    def test_a_record_may_have_no_fields(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"head only", {}, 60, None)
        head, fields = self.call(store.load, key)
        assert (head, dict(fields)) == (b"head only", {})

    def test_an_update_sets_and_removes_fields_and_keeps_the_others(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"h1", {"a": "1", "b": "2", "c": "3"}, 60, None)
        assert (
            self.call(store.update, key, change(b"h2", {"b": "20", "d": "4"}, ["c", "never-there"])) is True
        )
        head, fields = self.call(store.load, key)
        assert head == b"h2"
        assert dict(fields) == {"a": "1", "b": "20", "d": "4"}

    def test_an_update_with_no_fields_replaces_only_the_head(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"before", {"a": "1"}, 60, None)
        assert self.call(store.update, key, change(b"after")) is True
        head, fields = self.call(store.load, key)
        assert (head, dict(fields)) == (b"after", {"a": "1"})

    def test_an_update_can_remove_every_field(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"h", {"a": "1", "b": "2"}, 60, None)
        assert self.call(store.update, key, change(b"h", {}, ["a", "b"])) is True
        head, fields = self.call(store.load, key)
        assert (head, dict(fields)) == (b"h", {})

    def test_updating_after_a_concurrent_delete_does_not_resurrect_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"alive", {"a": "1"}, 60, None)
        self.call(store.delete, key)  # e.g. a log-out in another request
        assert self.call(store.update, key, change(b"late write", {"b": "2"})) is False
        assert self.call(store.load, key) is None

    def test_delete_removes_the_record_and_says_it_was_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"x", {"a": "1"}, 60, None)
        assert self.call(store.delete, key) is True
        assert self.call(store.load, key) is None

    def test_deleting_an_unknown_key_is_not_an_error_and_says_so(self, store: Any) -> None:
        key = self.key()
        assert self.call(store.delete, key) is False
        assert self.call(store.delete, key) is False
        assert self.call(store.load, key) is None

    def test_deleting_an_expired_record_says_it_was_not_there(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"x", {}, 1, None)
        self.expire(store, 1.3)
        assert self.call(store.delete, key) is False

    def test_of_two_racing_deletes_exactly_one_finds_the_record(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"x", {}, 60, None)
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
        self.call(store.create, key, b"short-lived", {"a": "1"}, 1, None)
        assert self.call(store.load, key) is not None
        self.expire(store, 1.3)
        assert self.call(store.load, key) is None

    def test_an_expired_record_cannot_be_updated_back_to_life(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"short-lived", {"a": "1"}, 1, None)
        self.expire(store, 1.3)
        assert self.call(store.update, key, change(b"revived?", {"b": "2"}, ttl=60)) is False
        assert self.call(store.load, key) is None

    def test_an_update_sets_a_new_ttl(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"v1", {}, 2, None)
        self.expire(store, 1.1)
        assert self.call(store.update, key, change(b"v2", ttl=60)) is True
        self.expire(store, 1.5)
        loaded = self.call(store.load, key)
        assert loaded is not None
        assert loaded[0] == b"v2"

    def test_an_update_can_shorten_the_ttl(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"v1", {}, 600, None)
        assert self.call(store.update, key, change(b"v2", ttl=1)) is True
        self.expire(store, 1.3)
        assert self.call(store.load, key) is None

    def test_keys_are_independent(self, store: Any) -> None:
        keys = [self.key() for _ in range(20)]
        for index, key in enumerate(keys):
            self.call(store.create, key, b"head-%d" % index, {"n": f"{index}"}, 60, None)
        self.call(store.delete, keys[0])
        self.call(store.update, keys[1], change(b"changed", {"n": "-1"}))
        assert self.call(store.load, keys[0]) is None
        assert self.call(store.load, keys[1])[0] == b"changed"
        for index, key in enumerate(keys[2:], start=2):
            head, fields = self.call(store.load, key)
            assert (head, dict(fields)) == (b"head-%d" % index, {"n": f"{index}"})

    def test_large_records_survive(self, store: Any) -> None:
        key = self.key()
        big = bytes(range(256)) * 256  # 64 KiB
        text = "".join(map(chr, range(32, 127))) * 700  # 66 KiB
        fields = {f"key-{n}": f"{n}" for n in range(5000)} | {"big": text}
        self.call(store.create, key, big, fields, 60, None)
        head, loaded = self.call(store.load, key)
        assert head == big
        assert dict(loaded) == fields
        updated = {f"key-{n}": f"-{n}" for n in range(0, 5000, 2)}
        removed = [f"key-{n}" for n in range(1, 5000, 2)]
        assert self.call(store.update, key, change(b"h", updated, removed)) is True
        assert dict(self.call(store.load, key)[1]) == updated | {"big": text}

    def test_concurrent_updates_of_different_fields_are_all_kept(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"h", {"start": "1"}, 60, None)
        writers, rounds = 16, 5
        barrier = threading.Barrier(writers)
        answers: list[bool] = []

        def writer(n: int) -> None:
            barrier.wait()
            for r in range(rounds):
                answers.append(self._call_in_thread(store.update, key, change(b"h", {f"w{n}-{r}": f"{r}"})))

        self._run_threads(writer, writers)
        assert answers == [True] * (writers * rounds)
        expected = {"start": "1"} | {f"w{n}-{r}": f"{r}" for n in range(writers) for r in range(rounds)}
        assert dict(self.call(store.load, key)[1]) == expected

    def test_concurrent_updates_of_one_field_leave_one_of_the_written_values(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"h", {"color": '"none"'}, 60, None)
        writers = 16
        barrier = threading.Barrier(writers)

        def writer(n: int) -> None:
            barrier.wait()
            self._call_in_thread(store.update, key, change(b"h%d" % n, {"color": f'"c{n}"', f"own{n}": "1"}))

        self._run_threads(writer, writers)
        head, fields = self.call(store.load, key)
        assert fields["color"] in {f'"c{n}"' for n in range(writers)}
        assert head in {b"h%d" % n for n in range(writers)}
        assert all(fields[f"own{n}"] == "1" for n in range(writers))

    def test_updates_racing_a_delete_never_bring_the_record_back(self, store: Any) -> None:
        key = self.key()
        self.call(store.create, key, b"h", {"a": "1"}, 60, None)
        writers = 8
        barrier = threading.Barrier(writers + 1)
        deleted: list[bool] = []

        def worker(n: int) -> None:
            barrier.wait()
            if n == writers:
                deleted.append(self._call_in_thread(store.delete, key))
                return
            for r in range(10):
                self._call_in_thread(store.update, key, change(b"h", {f"w{n}-{r}": "1"}))

        self._run_threads(worker, writers + 1)
        assert deleted == [True]
        assert self.call(store.load, key) is None
        assert self.call(store.update, key, change(b"h", {"late": "1"})) is False
        assert self.call(store.load, key) is None

    @staticmethod
    def _run_threads(target: Callable[[int], None], count: int) -> None:
        errors: list[BaseException] = []

        def run(n: int) -> None:
            try:
                target(n)
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _call_in_thread(self, method: Callable[..., Any], *args: Any) -> Any:
        """Call a store method from a worker thread, on that thread's own event loop if it is
        async (one loop per thread for the whole test, as a server thread would have)."""
        result = method(*args)
        if not inspect.isawaitable(result):
            return result
        loop = getattr(self._thread_loops, "loop", None)
        if loop is None:
            loop = self._thread_loops.loop = asyncio.new_event_loop()
            self._all_loops.append(loop)
        return loop.run_until_complete(result)


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
        """``{key: head}`` of the user's listed sessions."""
        return dict(self.call(store.user_sessions, user))

    def test_sessions_created_for_a_user_are_listed_with_their_heads(self, store: Any) -> None:
        user = self.user()
        keys = [self.key_for(user) for _ in range(3)]
        for n, key in enumerate(keys):
            self.call(store.create, key, b"head-%d" % n, {"secret": '"not listed"'}, 60, user)
        anonymous = self.key_for(user)
        self.call(store.create, anonymous, b"anonymous", {}, 60, None)
        assert self.listed(store, user) == {key: b"head-%d" % n for n, key in enumerate(keys)}

    def test_users_are_listed_apart(self, store: Any) -> None:
        alice, bob = self.user(), self.user()
        self.call(store.create, self.key_for(alice), b"a", {}, 60, alice)
        self.call(store.create, self.key_for(bob), b"b", {}, 60, bob)
        assert list(self.listed(store, alice).values()) == [b"a"]
        assert list(self.listed(store, bob).values()) == [b"b"]
        assert self.listed(store, self.user()) == {}

    def test_a_deleted_session_leaves_the_listing(self, store: Any) -> None:
        user = self.user()
        gone, stays = self.key_for(user), self.key_for(user)
        self.call(store.create, gone, b"x", {}, 60, user)
        self.call(store.create, stays, b"y", {}, 60, user)
        assert self.call(store.delete, gone) is True
        assert list(self.listed(store, user)) == [stays]

    def test_an_expired_session_is_not_listed(self, store: Any) -> None:
        user = self.user()
        self.call(store.create, self.key_for(user), b"short", {}, 1, user)
        long_lived = self.key_for(user)
        self.call(store.create, long_lived, b"long", {}, 60, user)
        self.expire(store, 1.3)
        assert list(self.listed(store, user)) == [long_lived]

    def test_a_session_kept_alive_by_updates_stays_listed(self, store: Any) -> None:
        user = self.user()
        key = self.key_for(user)
        self.call(store.create, key, b"v1", {}, 2, user)
        self.expire(store, 1.1)
        assert self.call(store.update, key, change(b"v2", ttl=60, user=user)) is True
        self.expire(store, 1.5)
        assert self.listed(store, user) == {key: b"v2"}

    def test_updates_keep_the_binding_and_can_move_it(self, store: Any) -> None:
        user, other = self.user(), self.user()
        key = self.key_for(user)
        self.call(store.create, key, b"v1", {}, 60, user)
        assert self.call(store.update, key, change(b"v2", {"a": "1"}, user=user)) is True
        assert self.listed(store, user) == {key: b"v2"}
        assert self.call(store.update, key, change(b"v3", user=None)) is True
        assert self.listed(store, user) == {}
        assert self.listed(store, other) == {}

    def test_revoking_all_of_a_users_sessions_spares_the_kept_one_and_other_users(self, store: Any) -> None:
        user, other = self.user(), self.user()
        keys = [self.key_for(user) for _ in range(4)]
        for key in keys:
            self.call(store.create, key, b"x", {"a": "1"}, 60, user)
        theirs = self.key_for(other)
        self.call(store.create, theirs, b"other", {}, 60, other)
        assert self.call(store.delete_user_sessions, user, keys[0]) == 3
        assert list(self.listed(store, user)) == [keys[0]]
        for key in keys[1:]:
            assert self.call(store.load, key) is None
        assert self.call(store.load, keys[0]) is not None
        assert self.call(store.load, theirs) is not None
        assert self.call(store.delete_user_sessions, user, None) == 1
        assert self.listed(store, user) == {}
        assert self.call(store.delete_user_sessions, user, None) == 0

    def test_an_update_racing_a_revocation_does_not_bring_the_session_back(self, store: Any) -> None:
        user = self.user()
        key = self.key_for(user)
        self.call(store.create, key, b"x", {}, 60, user)
        self.call(store.delete_user_sessions, user, None)
        assert self.call(store.update, key, change(b"late", {"a": "1"}, user=user)) is False
        assert self.call(store.load, key) is None
        assert self.listed(store, user) == {}
