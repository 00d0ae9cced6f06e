"""Run a synchronous store from async code: the one sync/async bridge."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from ..typing import AsyncStore, Change, HasAsync, Registry, Store, StoredRecord

__all__ = ["InThread", "Inline", "as_async"]

T = TypeVar("T")


class Inline:
    """An AsyncStore over a store that does no I/O (``blocking = False``)."""

    __slots__ = ("inline", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.inline = store  # the engine's driver calls it directly (see _steps.run_async)

    async def load(self, key: str) -> StoredRecord | None:
        return self.store.load(key)

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        self.store.create(key, head, fields, ttl, user)

    async def update(self, key: str, change: Change) -> bool:
        return self.store.update(key, change)

    async def delete(self, key: str) -> bool:
        return self.store.delete(key)

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return cast(Registry, self.store).user_sessions(user)

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return cast(Registry, self.store).delete_user_sessions(user, keep)


class InThread:
    """An AsyncStore that runs a blocking store's calls on a small thread pool,
    so the event loop never waits on disk or network I/O."""

    __slots__ = ("_executor", "store")

    def __init__(self, store: Store, *, threads: int = 4) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sessionware-store")

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (e.g. trio through anyio)
            import anyio.to_thread

            return await anyio.to_thread.run_sync(functools.partial(function, *args))
        return await loop.run_in_executor(self._executor, function, *args)

    async def load(self, key: str) -> StoredRecord | None:
        return await self._run(self.store.load, key)

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None:
        await self._run(self.store.create, key, head, fields, ttl, user)

    async def update(self, key: str, change: Change) -> bool:
        return await self._run(self.store.update, key, change)

    async def delete(self, key: str) -> bool:
        return await self._run(self.store.delete, key)

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        return await self._run(cast(Registry, self.store).user_sessions, user)

    async def delete_user_sessions(self, user: str, keep: str | None) -> int:
        return await self._run(cast(Registry, self.store).delete_user_sessions, user, keep)


def as_async(store: Store | AsyncStore) -> AsyncStore:
    """``store`` itself if it is async, its native asyncio face, or the right bridge for it.

    The bridges pass the registry methods through; callers check that the
    original store is a :class:`~sessionware.typing.Registry` first.
    """
    if isinstance(store, HasAsync):
        return store.asyncio()
    if inspect.iscoroutinefunction(store.load):
        return cast(AsyncStore, store)
    sync = cast(Store, store)
    if getattr(store, "blocking", True) is False:
        return Inline(sync)
    return InThread(sync)
