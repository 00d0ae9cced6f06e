"""The interfaces a server-side store implements, and shared type aliases.

A store moves opaque bytes under string keys, with a time-to-live and a
version for compare-and-set. It never generates keys (sessionware does, from
256 random bits, and passes only a hash of the session ID as the key), never
serializes and never decides expiry: sessionware checks the session's own
timestamps on every load, so a store's TTL is only how long it must keep a
record, not what makes a session valid.

``sessionware.testing.StoreContract`` is the test suite every store must pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["ASGIApp", "AsyncStore", "Message", "Purgeable", "Receive", "Scope", "Send", "Store"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class Store(Protocol):
    """**Protocol**: a synchronous server-side store.

    A store that does no I/O (such as :class:`~sessionware.MemoryStore`) sets
    the class attribute ``blocking = False``; the ASGI middleware then calls it
    directly instead of in a worker thread.
    """

    def load(self, key: str) -> tuple[bytes, int] | None:
        """Return ``(data, version)`` for ``key``, or None if it is absent or its TTL has passed.

        Loading never creates anything. Raises :class:`~sessionware.StoreError`
        when the store cannot answer; it never returns None for a failure.
        """
        ...

    def save(self, key: str, data: bytes, ttl: int, version: int | None) -> bool:
        """Store ``data`` under ``key`` for ``ttl`` seconds (``ttl >= 1``).

        With ``version=None`` the key is new: create the record (it cannot
        exist; keys are random) and return True. With a version, write only if
        the record still exists with exactly that version, give it a new
        version, and return True; return False if it changed or is gone. A
        record deleted by a concurrent request is therefore never brought back.
        Raises :class:`~sessionware.StoreError` on failure.
        """
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether a live record was there to delete.

        Deleting an absent or expired key is not an error: it returns False.
        The answer must come from the deletion itself (not an earlier
        look-up), because renewing a session relies on it to tell a live
        session from one a concurrent request has just dropped. Raises
        :class:`~sessionware.StoreError` on failure: a log-out that did not
        happen must never look as if it did.
        """
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """**Protocol**: :class:`Store` with ``async`` methods of the same meaning."""

    async def load(self, key: str) -> tuple[bytes, int] | None: ...

    async def save(self, key: str, data: bytes, ttl: int, version: int | None) -> bool: ...

    async def delete(self, key: str) -> bool: ...


@runtime_checkable
class Purgeable(Protocol):
    """**Protocol**: a store that can remove expired records on request."""

    def purge_expired(self) -> int:
        """Delete every record whose TTL has passed; return how many were deleted."""
        ...
