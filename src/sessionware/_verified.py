"""Remembering recently verified cookie values, so a repeat costs no cryptography.

A browser sends the same cookie value on every request until the server sets a
new one. Verifying it (base64, then AES-GCM or HMAC) is most of what reading a
session costs, and the answer for a given value never changes under a given
set of secrets. So the engine keeps the last few thousand values it verified,
with what they decoded to, and verifies only values it has not seen.

Only values that verified are kept, so a forger cannot fill it. A lookup is an
exact match on the whole value, hashed with Python's per-process randomized
string hash: answering faster for a value seen before reveals nothing to
someone who does not already hold that value. Expiry, and anything else that
depends on time, is still checked on every request. The cache is per
middleware instance, so changing the secrets (a new instance) starts empty.

The same cache keeps the heads of server-side records the engine has parsed
and checked (a head changes only when the session is written or touched), so
a read-mostly session is not parsed on every request either.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["VerifiedCache"]

K = TypeVar("K", str, bytes)
T = TypeVar("T")


class VerifiedCache(Generic[K, T]):
    """A bounded map from a value (a cookie's, a record head's) to what it verified to; oldest out first."""

    __slots__ = ("_entries", "_order", "get", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[K, T] = {}
        #: ``get(value)``: what ``value`` verified to, or None (the dict's own get: no Python frame).
        self.get: Callable[[K], T | None] = self._entries.get
        # Insertion order, for eviction: deleting a dict's first key over and over makes
        # finding the next one slower each time (the dict keeps the holes until it resizes).
        self._order: deque[K] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, value: K, verified: T) -> None:
        if not self.size:
            return
        order = self._order
        order.append(value)  # a value put twice is evicted twice: the second time, a no-op
        self._entries[value] = verified
        if len(order) > self.size + (self.size >> 3):
            self._trim()

    def _trim(self) -> None:
        """Back down to ``size``: the oldest eighth out at once, so a put costs O(1) on average."""
        entries, order = self._entries, self._order
        while len(order) > self.size:
            try:
                entries.pop(order.popleft(), None)
            except IndexError:  # emptied by another thread
                break
