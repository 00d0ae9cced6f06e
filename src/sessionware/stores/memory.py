"""The in-memory store: one process, no persistence."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import ClassVar

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keep sessions in a dict in this process.

    For development, tests and single-process apps: sessions vanish when the
    process exits and are not shared between worker processes, so behind
    several workers a user would hop between sessions. It is also the
    reference implementation of :class:`~sessionware.typing.Store` -- short on
    purpose, to read before writing a store of your own.

    Thread-safe. A record expires ``ttl`` seconds after its last save; expired
    records are never returned and are swept out at most every
    ``sweep_interval`` seconds while writes happen, so memory stays bounded by
    the number of live sessions.

    Options:
        sweep_interval: Seconds between sweeps of expired records. Defaults to 60.
        clock: A function returning the current time in seconds, used for
            TTLs only. Defaults to :func:`time.monotonic`; tests pass a fake.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=MemoryStore())
    """

    #: No I/O: the ASGI middleware calls it directly rather than in a thread.
    blocking: ClassVar[bool] = False

    def __init__(self, *, sweep_interval: float = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[str, tuple[bytes, int, float]] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval

    def __len__(self) -> int:
        """How many records are held, expired ones not yet swept included."""
        return len(self._records)

    def load(self, key: str) -> tuple[bytes, int] | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record[2] <= self._clock():
            with self._lock:
                if self._records.get(key) is record:
                    del self._records[key]
            return None
        return record[0], record[1]

    def save(self, key: str, data: bytes, ttl: int, version: int | None) -> bool:
        now = self._clock()
        with self._lock:
            if version is not None:
                current = self._records.get(key)
                if current is None or current[1] != version or current[2] <= now:
                    return False
            self._records[key] = (data, next(self._versions), now + ttl)
            if now >= self._next_sweep:
                self._sweep(now)
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            record = self._records.pop(key, None)
        return record is not None and record[2] > self._clock()

    def purge_expired(self) -> int:
        with self._lock:
            return self._sweep(self._clock())

    def _sweep(self, now: float) -> int:
        expired = [key for key, record in self._records.items() if record[2] <= now]
        for key in expired:
            del self._records[key]
        self._next_sweep = now + self._sweep_interval
        return len(expired)
