"""The in-memory store: one process, no persistence."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import ClassVar, NamedTuple

from .._arguments import CheckedArguments
from ..errors import ConfigurationError
from ..typing import Change, StoredRecord

__all__ = ["MemoryStore"]


class _Record(NamedTuple):
    head: bytes
    fields: Mapping[str, str]  # replaced, never changed in place: load hands it out as it is
    expires: float
    user: str | None


class MemoryStore(CheckedArguments):
    """Keep sessions in a dict in this process.

    For development, tests and single-process apps: sessions vanish when the
    process exits and are not shared between worker processes, so behind
    several workers a user would hop between sessions. It is also the
    reference implementation of :class:`~sessionware.typing.Store` and
    :class:`~sessionware.typing.Registry` -- short on purpose, to read before
    writing a store of your own.

    Thread-safe: every write happens under one lock, on the record as it is
    then. A record expires ``ttl`` seconds after its last write; expired
    records are never returned and are swept out at most every
    ``sweep_interval`` seconds while writes happen.

    **Memory is bounded.** Every visitor whose session is written -- an
    anonymous one too: a log-in form's CSRF token is a write -- costs a record
    (a few hundred bytes) until its session expires, so a flood of new
    visitors could otherwise grow the process without limit. Past
    ``max_sessions`` records, the ones written longest ago go first (a session
    in use is written at least every ``touch_interval``, so this is the least
    recently active); their users are logged out. For more sessions than one
    process should hold, use :class:`SQLiteStore` or a shared store.

    Options:
        max_sessions: The most records kept. Defaults to 100,000 (some tens of
            MB); None for no bound.
        sweep_interval: Seconds between sweeps of expired records. Defaults to 60.
        clock: A function returning the current time in seconds, used for
            TTLs only. Defaults to :func:`time.monotonic`; tests pass a fake.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=MemoryStore())
    """

    #: No I/O: the ASGI middleware calls it directly rather than in a thread.
    blocking: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_sessions: int | None = 100_000,
        sweep_interval: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions is not None and (type(max_sessions) is not int or max_sessions < 1):
            raise ConfigurationError(
                f"MemoryStore expects max_sessions to be a number >= 1 or None, got {max_sessions!r}"
            )
        self._max = max_sessions
        # In the order they were last written: the first is the first to go.
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._users: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval

    def __len__(self) -> int:
        """How many records are held, expired ones not yet swept included."""
        return len(self._records)

    def load(self, key: str) -> StoredRecord | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record.expires <= self._clock():
            with self._lock:
                if self._records.get(key) is record:
                    self._remove(key)
            return None
        return record.head, record.fields

    def create(self, key: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._put(key, _Record(head, dict(fields), now + ttl, user))
            if now >= self._next_sweep:
                self._sweep(now)

    def update(self, key: str, change: Change) -> bool:
        now = self._clock()
        with self._lock:
            current = self._records.get(key)
            if current is None or current.expires <= now:
                return False
            fields = {**current.fields, **change.fields}
            for name in change.removed:
                fields.pop(name, None)
            self._put(key, _Record(change.head, fields, now + change.ttl, change.user))
        return True

    def delete(self, key: str) -> bool:
        with self._lock:
            record = self._remove(key)
        return record is not None and record.expires > self._clock()

    def user_sessions(self, user: str) -> list[tuple[str, bytes]]:
        now = self._clock()
        with self._lock:
            records = [(key, self._records[key]) for key in self._users.get(user, ())]
        return [(key, record.head) for key, record in records if record.expires > now]

    def registry_keys(self, user_id: str) -> list[str]:
        """Every registry key (``"<group>/<user id>"``) sessions of ``user_id`` are filed under,
        whatever secret made them (for diagnostics, as the other stores' ``registry_keys``)."""
        with self._lock:
            return sorted(user for user in self._users if user.partition("/")[2] == user_id)

    def delete_user_sessions(self, user: str, keep: str | None) -> int:
        now = self._clock()
        deleted = 0
        with self._lock:
            for key in list(self._users.get(user, ())):
                if key != keep:
                    record = self._remove(key)
                    deleted += record is not None and record.expires > now
        return deleted

    def purge_expired(self) -> int:
        with self._lock:
            return self._sweep(self._clock())

    # -- under the lock ------------------------------------------------------------

    def _put(self, key: str, record: _Record) -> None:
        records = self._records
        current = records.get(key)
        if current is not None and current.user != record.user:
            self._unindex(key, current.user)
        records[key] = record
        records.move_to_end(key)
        if record.user is not None:
            self._users.setdefault(record.user, set()).add(key)
        if self._max is not None:
            while len(records) > self._max:
                evicted, old = records.popitem(last=False)
                self._unindex(evicted, old.user)

    def _remove(self, key: str) -> _Record | None:
        record = self._records.pop(key, None)
        if record is not None:
            self._unindex(key, record.user)
        return record

    def _unindex(self, key: str, user: str | None) -> None:
        if user is None:
            return
        keys = self._users.get(user)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._users[user]

    def _sweep(self, now: float) -> int:
        expired = [key for key, record in self._records.items() if record.expires <= now]
        for key in expired:
            self._remove(key)
        self._next_sweep = now + self._sweep_interval
        return len(expired)
