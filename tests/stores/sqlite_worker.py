"""Run in separate processes by test_sqlite: increment one counter with compare-and-set."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from sessionware import SQLiteStore


def increment(path: str, key: str, times: int) -> int:
    store = SQLiteStore(path)
    conflicts = 0
    for _ in range(times):
        while True:
            loaded = store.load(key)
            assert loaded is not None
            data, version = loaded
            if store.save(key, str(int(data) + 1).encode(), 600, version, None):
                break
            conflicts += 1
    return conflicts


def forked(store: SQLiteStore, key: str, report: Connection) -> None:
    """In a child made by fork(): use the parent's store object, and say which
    connection it used (the parent's, inherited, or one of the child's own)."""
    loaded = store.load(key)
    assert loaded is not None
    store.save(key, loaded[0] + b"+child", 600, loaded[1], None)
    report.send(id(store._connection()))
    report.close()


if __name__ == "__main__":
    print(increment(sys.argv[1], sys.argv[2], int(sys.argv[3])))
