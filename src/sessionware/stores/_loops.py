"""One asyncio client or pool per event loop, closed when that loop shuts down.

asyncio connections belong to the loop that opened them. An app normally runs
one loop, but test clients (Starlette's, for one) start a loop per request or
per client, and a client shared across loops fails with "attached to a
different loop" or leaks sockets. So the asyncio face of a network store asks
this for its client: the first call in a loop creates one, and an async
generator registered with that loop closes it when the loop shuts down
(``asyncio.run`` and every ASGI server finalize async generators on exit).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``await per_loop.get()``: this loop's resource, made by ``create`` on first use."""

    def __init__(
        self,
        create: Callable[[], T],
        close: Callable[[T], Awaitable[None]],
        setup: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        self._create = create
        self._close = close
        self._setup = setup
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None], asyncio.Event]
        ]
        self._by_loop = weakref.WeakKeyDictionary()
        self._last: tuple[asyncio.AbstractEventLoop, T] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        entry = self._by_loop.get(loop)
        if entry is None:
            resource = self._create()
            closer = self._closer(resource)
            ready = asyncio.Event()
            self._by_loop[loop] = (resource, closer, ready)
            await closer.__anext__()  # registers it with this loop's shutdown_asyncgens
            try:
                if self._setup is not None:
                    await self._setup(resource)
            finally:
                ready.set()
        else:
            resource, _, ready = entry
            await ready.wait()  # another task is still setting it up
        self._last = (loop, resource)
        return resource

    async def _closer(self, resource: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            last = self._last
            if last is not None and last[1] is resource:
                self._last = None
            await self._close(resource)

    async def aclose(self) -> None:
        """Close this loop's resource now (it is made again if used later)."""
        loop = asyncio.get_running_loop()
        entry = self._by_loop.pop(loop, None)
        if self._last is not None and self._last[0] is loop:
            self._last = None
        if entry is not None:
            await entry[1].aclose()
