"""Where sessions live. Importing this package never imports an optional dependency."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .cookie import CookieStore as CookieStore
from .memory import MemoryStore as MemoryStore
from .sqlite import SQLiteStore as SQLiteStore

__all__ = ["CookieStore", "MemoryStore", "SQLiteStore", "from_url"]


def from_url(url: str, **options: Any) -> Any:
    """A server-side store from a URL (``options`` go to its constructor).

    - ``sqlite:///relative/path.db`` (relative to the current directory) or
      ``sqlite:////absolute/path.db``: SQLAlchemy's convention, three slashes
      then the path
    - ``redis://host:6379/0``, ``rediss://...`` (TLS)
    - ``redis+cluster://host:7000`` (any node of a Redis Cluster)
    - ``postgresql://user@host:5432/db`` (or ``postgres://``)
    - ``memory:`` (this process only)

    Example::

        store = from_url(os.environ["SESSION_STORE_URL"])
    """
    scheme, _, rest = url.partition(":")
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url), **options)
    if scheme in ("redis", "rediss"):
        from .redis import RedisStore

        return RedisStore(url, **options)
    if scheme == "redis+cluster":
        from .redis import RedisStore

        return RedisStore("redis:" + rest, cluster=True, **options)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url, **options)
    if url == "memory:":
        return MemoryStore(**options)
    raise ConfigurationError(
        f"from_url does not know the store URL {url!r}; use sqlite:///..., redis://..., "
        "rediss://..., redis+cluster://..., postgresql://... or memory:"
    )


def _sqlite_path(url: str) -> str:
    """The file an ``sqlite:`` URL names, as SQLAlchemy reads it.

    ``sqlite:///sessions.db`` is ``sessions.db`` in the current directory;
    ``sqlite:////var/lib/app/sessions.db`` is ``/var/lib/app/sessions.db``.
    """
    rest = url.partition(":")[2]
    if not rest.startswith("///") or len(rest) == 3:
        raise ConfigurationError(
            f"from_url expects sqlite:///relative/path.db or sqlite:////absolute/path.db "
            f"(three slashes, then the path), got {url!r}"
        )
    return rest[3:]


def __getattr__(name: str) -> object:
    # The shared stores import their client library, an optional extra: only on use.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'sessionware.stores' has no attribute {name!r}")
