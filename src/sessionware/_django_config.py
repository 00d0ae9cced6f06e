"""Django's settings as a sessionware engine, for :mod:`sessionware.django`.

The engine is built on first use from ``settings.SESSIONWARE`` and Django's own
session settings, kept for the process, and rebuilt when a test changes one of
those settings (``override_settings``). Stores named by URL are made once per
URL and options, so a rebuilt engine reuses their connections.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ._config import build_engine
from ._engine import Engine
from ._expiry import Expiry
from .errors import ConfigurationError
from .legacy import LegacyReader, readers_of
from .stores import CookieStore, from_url
from .stores._thread import as_async
from .telemetry import Instrumented
from .typing import AsyncStore, Store

__all__ = ["OPTIONS", "Configured", "Misconfigured", "current"]

#: The keys ``settings.SESSIONWARE`` may have (documented in ``sessionware.django``).
OPTIONS = frozenset(
    {
        "store",
        "store_options",
        "secret_key_base",
        "expiry",
        "record_ip",
        "max_sessions_per_user",
        "on_session_limit",
        "cookie_cache",
        "clock",
        "legacy",
        "events",
        "telemetry",
    }
)
#: Django settings the engine is made from: a change (in a test) rebuilds it.
_WATCHED = frozenset(
    {"SESSIONWARE", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SESSION_COOKIE_NAME", "SESSION_COOKIE_AGE"}
)
_HOW = "see the sessionware.django docstring or docs/django.md"


class Misconfigured(ImproperlyConfigured, ConfigurationError):
    """A bad ``SESSIONWARE`` setting: Django's ``ImproperlyConfigured`` and sessionware's
    ``ConfigurationError`` at once, so either ``except`` catches it."""


class Configured:
    """One configuration: the engine, its synchronous store, and (made on first use) its async face."""

    __slots__ = ("_async", "_raw", "clock", "engine", "legacy", "store")

    def __init__(
        self,
        engine: Engine,
        store: Store,
        clock: Callable[[], float],
        legacy: tuple[LegacyReader, ...] = (),
        *,
        raw: Store | None = None,
    ) -> None:
        self.engine = engine
        #: The store the engine calls: the configured one, or (with telemetry) it timed.
        self.store = store
        self._raw = store if raw is None else raw
        self.clock = clock
        #: Readers of the sessions the previous SESSION_ENGINE wrote (``SESSIONWARE['legacy']``).
        self.legacy = legacy
        self._async: AsyncStore | None = None

    def async_store(self) -> AsyncStore:
        """The store's asyncio face (Redis, PostgreSQL, SQLite) or a thread bridge to it."""
        if self._async is None:
            face = as_async(self._raw)
            telemetry = self.engine.telemetry
            self._async = face if telemetry is None else Instrumented(face, telemetry, is_async=True)
        return self._async

    def now(self) -> int:
        return int(self.clock())


_lock = threading.Lock()
_current: Configured | None = None
_stores: dict[tuple[str, str], Any] = {}


def current() -> Configured:
    """The configuration the settings describe now (built on first use)."""
    global _current
    configured = _current
    if configured is None:
        with _lock:
            configured = _current
            if configured is None:
                configured = _current = _build()
    return configured


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting in _WATCHED:
        _current = None


setting_changed.connect(_reset, dispatch_uid="sessionware.django.settings")


def _build() -> Configured:
    options = getattr(settings, "SESSIONWARE", None)
    if options is None:
        raise Misconfigured(
            "sessionware.django needs settings.SESSIONWARE, a dict naming at least the store, e.g. "
            f"SESSIONWARE = {{'store': 'sqlite:///sessions.db'}} ({_HOW})"
        )
    if not isinstance(options, Mapping):
        raise Misconfigured(f"settings.SESSIONWARE must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise Misconfigured(
            f"settings.SESSIONWARE has no option {unknown[0]!r}; the options are {sorted(OPTIONS)} ({_HOW})"
        )
    store = _store(options)
    clock = options.get("clock", time.time)
    if not callable(clock):
        raise Misconfigured(f"SESSIONWARE['clock'] must be a function returning unix seconds, got {clock!r}")
    given_secret = options.get("secret_key_base")
    secret = given_secret
    if secret is None:
        # Django's own secret, and its rotated ones: the first signs, all verify.
        secret = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    expiry = options.get("expiry")
    if expiry is None:
        age = settings.SESSION_COOKIE_AGE
        if type(age) is not int or age <= 0:
            raise Misconfigured(
                f"sessionware.django takes its default lifetime from SESSION_COOKIE_AGE, which must "
                f"then be a positive number of seconds (got {age!r}); or set SESSIONWARE['expiry']"
            )
        expiry = Expiry(idle_timeout=None, absolute_timeout=age)
    try:
        engine = build_engine(
            secret_key_base=secret,
            store=store,
            cookie_name=settings.SESSION_COOKIE_NAME,
            expiry=expiry,
            cookie_cache=options.get("cookie_cache", 1024),
            record_ip=options.get("record_ip", False),
            max_sessions_per_user=options.get("max_sessions_per_user"),
            on_session_limit=options.get("on_session_limit", "evict_oldest"),
            events=options.get("events"),
            telemetry=options.get("telemetry"),
            owner="SESSIONWARE",
        )
    except ConfigurationError as exc:
        if given_secret is None and "secret_key_base" in str(exc):
            raise Misconfigured(
                f"sessionware.django derives its keys from SECRET_KEY (and SECRET_KEY_FALLBACKS), "
                f"which must then each be at least 32 random characters: {exc}; or set "
                "SESSIONWARE['secret_key_base']"
            ) from exc
        raise Misconfigured(str(exc)) from exc
    try:
        legacy = readers_of(options.get("legacy"), "SESSIONWARE['legacy']")
    except ConfigurationError as exc:
        raise Misconfigured(str(exc)) from exc
    if engine.telemetry is not None:
        # The engine's store, timed (a span per call), and its asyncio face timed too.
        timed = cast(Store, engine.registry_store)
        return Configured(engine, timed, clock, legacy, raw=store)
    return Configured(engine, store, clock, legacy)


def _store(options: Mapping[str, Any]) -> Store:
    """The store ``SESSIONWARE['store']`` names: a URL (made once per URL and options) or a store."""
    store = options.get("store")
    extra = options.get("store_options") or {}
    if not isinstance(extra, Mapping):
        raise Misconfigured(f"SESSIONWARE['store_options'] must be a dict, got {type(extra).__name__}")
    if store is None:
        raise Misconfigured(
            "SESSIONWARE['store'] is required: a store URL ('sqlite:///sessions.db', "
            "'redis://localhost:6379/0', 'redis+cluster://host:7000', 'postgresql://user@host/db') "
            f"or a store object ({_HOW})"
        )
    if isinstance(store, str):
        key = (store, repr(sorted(extra.items())))
        with_options = _stores.get(key)
        if with_options is None:
            try:
                with_options = _stores[key] = from_url(store, **extra)
            except ConfigurationError as exc:
                raise Misconfigured(f"SESSIONWARE['store']: {exc}") from exc
        store = with_options
    elif extra:
        raise Misconfigured("SESSIONWARE['store_options'] applies to a store URL, not to a store object")
    if isinstance(store, CookieStore | type):
        raise Misconfigured(
            "SESSIONWARE['store'] must be a server-side store (SQLite, Redis, PostgreSQL, memory), "
            f"as a URL or an instance; got {store!r}"
        )
    if not isinstance(store, Store) or inspect.iscoroutinefunction(store.load):
        raise Misconfigured(
            "SESSIONWARE['store'] must be a store with synchronous load/create/update/delete methods "
            f"(every built-in store has them), got {store!r}"
        )
    return store
