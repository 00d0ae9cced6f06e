"""The interfaces a server-side store implements, and shared type aliases.

A store keeps *records* under string keys, each with a time-to-live. A record
is two parts, both opaque to the store:

- the **head**: bytes with the session's times and log-in state, written
  whole by every change;
- the **fields**: a map of field name to value, one field per top-level key
  of the session's data: the name is the key as a JSON string escapes it,
  the value the JSON text of the key's value. Both are ``str``, ASCII
  without control characters, so a store may keep them as text (a Redis
  hash, a JSON object of strings in a SQL column).

A request's changes reach the store as ONE call that the store applies
atomically to the record *as it is now* (:meth:`Store.update` with a
:class:`Change`): a new head, fields to set, fields to remove, a new TTL and
the user the record is filed under. The store never compares versions and
never needs a retry: concurrent requests that set different keys all keep
their change, the same key ends with the last writer's value, and a record
that is gone (dropped, renewed, revoked) is never brought back.

A store never generates keys (sessionware does, from 256 random bits, and
passes only a hash of the session ID), never serializes and never decides
expiry: sessionware checks the session's own times on every load, so a
store's TTL is only how long it must keep a record, not what makes a session
valid.

Keys look like ``"<group>/<hash>"``. All the sessions of one logged-in user
share the group, and so does that user's registry key (``"<group>/<user>"``):
a store that shards (Redis Cluster) uses the group as its hash tag, so what
must change together lives together. Other stores may treat keys as opaque.

Capabilities beyond the four methods are separate protocols, checked with
``isinstance``: :class:`Registry` (a per-user index: list and revoke a user's
sessions), :class:`Purgeable` (delete expired records on request) and
:class:`HasAsync` (a native asyncio face the ASGI middleware uses).

``sessionware.testing.StoreContract`` (and ``RegistryContract``) are the test
suites every store must pass; :class:`~sessionware.MemoryStore` is the
reference implementation, short on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "ASGIApp",
    "AsyncRegistry",
    "AsyncStore",
    "Change",
    "HasAsync",
    "Message",
    "Purgeable",
    "Receive",
    "Registry",
    "Scope",
    "Send",
    "Store",
    "StoredRecord",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What :meth:`Store.load` returns: ``(head, fields)``.
StoredRecord = tuple[bytes, Mapping[str, str]]


class Change(NamedTuple):
    """One request's changes to a record, for :meth:`Store.update` to apply atomically.

    ``head`` replaces the record's head. ``fields`` are set (added or
    overwritten), then every name in ``removed`` is deleted (the two never
    share a name); other fields keep their current values, whoever wrote
    them. The record is then kept ``ttl`` seconds from now (``ttl >= 1``) and
    filed under ``user`` (a registry key, or None for an anonymous session).
    """

    head: bytes
    fields: Mapping[str, str]
    removed: Sequence[str]
    ttl: int
    user: str | None


@runtime_checkable
class Store(Protocol):
    """**Protocol**: a synchronous server-side store.

    A store that does no I/O (such as :class:`~sessionware.MemoryStore`) sets
    the class attribute ``blocking = False``; the ASGI middleware then calls it
    directly instead of in a worker thread.

    Every method raises :class:`~sessionware.StoreError` (or its subclasses
    :class:`~sessionware.StoreUnavailable`, :class:`~sessionware.StoreBusy`)
    when the store cannot answer; none of them ever reports a failure as
    "not found". The engine never mutates the mappings it is given or gets.
    """

    def load(self, key: str) -> StoredRecord | None:
        """``(head, fields)`` of the live record under ``key``, or None if there is none.

        A record whose TTL has passed is not live. Loading never creates
        anything.
        """
        ...

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        """Store a new record with exactly this head and these fields, for ``ttl`` seconds.

        ``key`` is new (random: it cannot exist; if it somehow does, the new
        record replaces it). ``user`` is the registry key the record is filed
        under, or None; a store with a :class:`Registry` files it in the same
        atomic step, other stores ignore it.
        """
        ...

    def update(self, key: str, change: Change) -> bool:
        """Apply ``change`` to the live record under ``key`` in one atomic step; True if done.

        Atomic means: applied to the record as it is at that moment, with no
        other write in between, never to a copy read earlier. If there is no
        live record (it expired, or a concurrent request deleted it), nothing
        is written -- a deleted session is never brought back -- and the
        answer is False.
        """
        ...

    def delete(self, key: str) -> bool:
        """Delete ``key`` (and its registry entry); return whether a live record was there.

        Deleting an absent or expired key is not an error: it returns False.
        The answer must come from the deletion itself (not an earlier
        look-up), because renewing a session relies on it to tell a live
        session from one a concurrent request has just dropped. A failure
        raises: a log-out that did not happen must never look as if it did.
        """
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """**Protocol**: :class:`Store` with ``async`` methods of the same meaning."""

    async def load(self, key: str) -> StoredRecord | None: ...

    async def create(
        self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> None: ...

    async def update(self, key: str, change: Change) -> bool: ...

    async def delete(self, key: str) -> bool: ...


@runtime_checkable
class Registry(Protocol):
    """**Protocol**: a store that indexes sessions by user.

    Listing costs O(that user's sessions), never a scan of all sessions.
    """

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        """``(key, head)`` of every live record filed under this ``user``."""
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
