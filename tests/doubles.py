"""Store doubles for the tests: a recording wrapper around any real store, which can be cut off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionware import MemoryStore
from sessionware.testing import FakeClock
from sessionware.typing import Change, StoredRecord


class Recording:
    """A store that records every call made to the store it wraps.

    ``down = True`` makes every call fail as a lost connection would (before
    reaching the inner store). ``changes`` holds what each create or update
    asked for, as a :class:`Change` (a create's has no removed names).
    """

    def __init__(self, inner: Any = None, *, clock: FakeClock | None = None) -> None:
        if inner is None:
            inner = MemoryStore() if clock is None else MemoryStore(clock=clock)
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self.changes: list[Change] = []
        self.down = False

    def _call(self, name: str, key: str, *args: Any) -> Any:
        self.calls.append((name, key))
        if self.down:
            raise ConnectionError(f"{name}: connection refused")
        return getattr(self.inner, name)(key, *args)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    @property
    def ttls(self) -> list[int]:
        return [change.ttl for change in self.changes]

    def load(self, key: str) -> StoredRecord | None:
        return self._call("load", key)  # type: ignore[no-any-return]

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        self.changes.append(Change(head, dict(fields), (), ttl, user))
        self._call("create", key, head, fields, ttl, user)

    def update(self, key: str, change: Change) -> bool:
        self.changes.append(change)
        return self._call("update", key, change)  # type: ignore[no-any-return]

    def delete(self, key: str) -> bool:
        return self._call("delete", key)  # type: ignore[no-any-return]

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return self._call("user_sessions", user)  # type: ignore[no-any-return]

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return self._call("delete_user_sessions", user, keep)  # type: ignore[no-any-return]


class AsyncOnly:
    """The async face of a store, with no synchronous methods at all."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def load(self, key: str) -> StoredRecord | None:
        return self.inner.load(key)  # type: ignore[no-any-return]

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        self.inner.create(key, head, fields, ttl, user)

    async def update(self, key: str, change: Change) -> bool:
        return self.inner.update(key, change)  # type: ignore[no-any-return]

    async def delete(self, key: str) -> bool:
        return self.inner.delete(key)  # type: ignore[no-any-return]
