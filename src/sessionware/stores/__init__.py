"""Where sessions live. Importing this package never imports an optional dependency."""

from __future__ import annotations

from .cookie import CookieStore as CookieStore
from .memory import MemoryStore as MemoryStore
from .sqlite import SQLiteStore as SQLiteStore

__all__ = ["CookieStore", "MemoryStore", "SQLiteStore"]
