"""Run in separate processes by test_sqlite: write fields of one shared record."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from sessionware import SQLiteStore
from sessionware.testing import change


def write_fields(path: str, key: str, name: str, times: int) -> int:
    """Set ``times`` fields of their own; return how many updates found the record."""
    store = SQLiteStore(path)
    return sum(store.update(key, change(b"h", {f"{name}-{n}": f"{n}"}, ttl=600)) for n in range(times))


def forked(store: SQLiteStore, key: str, report: Connection) -> None:
    """In a child made by fork(): use the parent's store object, and say which
    connection it used (the parent's, inherited, or one of the child's own)."""
    store.update(key, change(b"child", {"child": "1"}, ttl=600))
    report.send(id(store._waiting.get()))
    report.close()


if __name__ == "__main__":
    print(write_fields(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
