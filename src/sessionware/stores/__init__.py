"""Where sessions live. Importing this package never imports an optional dependency."""

from __future__ import annotations

from .cookie import CookieStore as CookieStore
from .memory import MemoryStore as MemoryStore
from .sqlite import SQLiteStore as SQLiteStore

__all__ = ["CookieStore", "MemoryStore", "SQLiteStore"]


def __getattr__(name: str) -> object:
    # The shared stores import their client library, an optional extra: only on use.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'sessionware.stores' has no attribute {name!r}")
