"""The interfaces a server-side store implements, and shared type aliases.

A store moves opaque bytes under string keys, with a time-to-live and a
version for compare-and-set. It never generates keys (sessionware does, from
256 random bits, and passes only a hash of the session ID as the key), never
serializes and never decides expiry: sessionware checks the session's own
timestamps on every load, so a store's TTL is only how long it must keep a
record, not what makes a session valid.

Keys look like ``"<group>/<hash>"``. All the sessions of one logged-in user
share the group, and so does that user's registry key (``"<group>/<user>"``):
a store that shards (Redis Cluster) uses the group as its hash tag, so what
must change together lives together. Other stores may treat keys as opaque.

Capabilities beyond the three methods are separate protocols, checked with
``isinstance``: :class:`Registry` (a per-user index: list and revoke a user's
sessions), :class:`Purgeable` (delete expired records on request) and
:class:`HasAsync` (a native asyncio face the ASGI middleware uses).

``sessionware.testing.StoreContract`` (and ``RegistryContract``) are the test
suites every store must pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ASGIApp",
    "AsyncRegistry",
    "AsyncStore",
    "HasAsync",
    "Message",
    "Purgeable",
    "Receive",
    "Registry",
    "Scope",
    "Send",
    "Store",
]

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

    def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool:
        """Store ``data`` under ``key`` for ``ttl`` seconds (``ttl >= 1``).

        With ``version=None`` the key is new: create the record (it cannot
        exist; keys are random) and return True. With a version, write only if
        the record still exists with exactly that version, give it a new
        version, and return True; return False if it changed or is gone. A
        record deleted by a concurrent request is therefore never brought back.

        ``user`` is the registry key of the user the session belongs to, or
        None for an anonymous session. A store with a :class:`Registry` files
        the record under it (the binding is part of the same write); other
        stores ignore it. Raises :class:`~sessionware.StoreError` on failure.
        """
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key`` (and its registry entry); return whether a live record was there.

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

    async def save(self, key: str, data: bytes, ttl: int, version: int | None, user: str | None) -> bool: ...

    async def delete(self, key: str) -> bool: ...


@runtime_checkable
class Registry(Protocol):
    """**Protocol**: a store that indexes sessions by user.

    Listing costs O(that user's sessions), never a scan of all sessions.
    """

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        """``(key, data)`` of every live record saved with this ``user``."""
        ...

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        """Delete every record of ``user`` except ``keep``, atomically; return how many."""
        ...


@runtime_checkable
class AsyncRegistry(Protocol):
    """**Protocol**: :class:`Registry` with ``async`` methods."""

    async def user_sessions(self, user: str) -> list[tuple[str, bytes]]: ...

    async def delete_user_sessions(self, user: str, keep: str | None) -> int: ...


@runtime_checkable
class HasAsync(Protocol):
    """**Protocol**: a store with a native asyncio face (Redis, PostgreSQL).

    The ASGI middleware uses ``store.asyncio()``; WSGI apps and the CLI use the
    store's own synchronous methods. Both faces share configuration.
    """

    def asyncio(self) -> AsyncStore: ...


@runtime_checkable
class Purgeable(Protocol):
    """**Protocol**: a store that can remove expired records on request."""

    def purge_expired(self) -> int:
        """Delete every record whose TTL has passed; return how many were deleted."""
        ...
