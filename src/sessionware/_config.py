"""Turning a middleware's options into an engine: shared by the ASGI, WSGI and Flask adapters."""

from __future__ import annotations

import logging
from typing import Any

from ._cookies import CookieAttributes
from ._dbsc_flow import Runtime
from ._engine import Engine
from ._expiry import PRESETS, Expiry
from ._keys import SecretInput
from .dbsc import DBSC
from .errors import ConfigurationError, StoreBusy, StoreUnavailable
from .events import Events
from .remember import RememberMe
from .stores.cookie import CookieStore
from .telemetry import Instrumented
from .telemetry import check as check_telemetry
from .typing import AsyncRegistry, AsyncStore, Registry, Store

__all__ = ["STORE_DOWN_TEXT", "build_engine", "check_store", "log_store_failure", "resolve_expiry"]

logger = logging.getLogger("sessionware")

#: The body of every adapter's default 503, when the session store fails (whatever the
#: cause: the log line says which).
STORE_DOWN_TEXT = "Service Unavailable: sessions cannot be loaded or saved right now. Please retry shortly.\n"


def log_store_failure(exc: Exception, answer: str = "a 503") -> None:
    """The one log line for a request failed by its store, saying what kind of failure it was."""
    if isinstance(exc, StoreBusy):
        kind = "busy: a lock stayed held past the store's timeout (contention, not an outage)"
    elif isinstance(exc, StoreUnavailable):
        kind = "unreachable or did not answer in time"
    else:
        kind = "failing"
    logger.error("sessionware: the session store is %s; answering with %s: %s", kind, answer, exc)


def _default_expiry(store: object) -> Expiry | str:
    """``"aal2"``, unless the store knows better (a cookie shared with Phoenix does)."""
    return store.default_expiry if isinstance(store, CookieStore) else "aal2"


def resolve_expiry(expiry: Expiry | str, owner: str = "SessionMiddleware") -> Expiry:
    """An :class:`Expiry` from an instance or a preset name, or a ConfigurationError."""
    if isinstance(expiry, Expiry):
        return expiry
    if isinstance(expiry, str) and expiry.lower() in PRESETS:
        return PRESETS[expiry.lower()]
    raise ConfigurationError(
        f"{owner} expects expiry to be an Expiry or one of {sorted(PRESETS)}, got {expiry!r}"
    )


def check_store(store: object, owner: str = "SessionMiddleware") -> CookieStore | Store | AsyncStore:
    if isinstance(store, type):
        raise ConfigurationError(
            f"{owner} expects store to be a store instance, got the class {store.__name__}; "
            f"write {store.__name__}(...)"
        )
    if isinstance(store, CookieStore | Store | AsyncStore):
        return store
    raise ConfigurationError(
        f"{owner} expects store to be CookieStore() or a server-side store with "
        f"load/create/update/delete methods (MemoryStore, SQLiteStore, ...), got {store!r}"
    )


def build_engine(
    *,
    secret_key_base: SecretInput,
    store: object = None,
    cookie_name: str | None = None,
    expiry: Expiry | str | None = None,
    secure: Any = "auto",
    same_site: str = "lax",
    path: str = "/",
    domain: str | None = None,
    partitioned: bool = False,
    persistent: bool = False,
    cookie_cache: int = 1024,
    record_ip: bool | str = False,
    max_sessions_per_user: int | None = None,
    on_session_limit: str = "evict_oldest",
    dbsc: Any = None,
    events: Any = None,
    telemetry: Any = None,
    remember: Any = None,
    clear_site_data: bool = False,
    anomaly: Any = None,
    owner: str = "SessionMiddleware",
) -> Engine:
    """The engine for one configuration of the session options (see ``SessionMiddleware``)."""
    checked = CookieStore() if store is None else check_store(store, owner)
    chosen = resolve_expiry(_default_expiry(checked) if expiry is None else expiry, owner)
    if expiry is not None and isinstance(checked, CookieStore):
        warning = checked.expiry_warning(chosen)
        if warning is not None:
            logger.warning("%s: %s", owner, warning)
    cookie_options: dict[str, Any] = {
        "path": path,
        "domain": domain,
        "secure": secure,
        "same_site": same_site,
        "partitioned": partitioned,
    }
    cookie = CookieAttributes(
        "session" if cookie_name is None else cookie_name,
        prefix="auto" if cookie_name is None else None,
        persistent=persistent,
        owner=owner,
        **cookie_options,
    )
    engine = Engine(
        secret_key_base=secret_key_base,
        store=checked,
        cookie=cookie,
        expiry=chosen,
        cookie_cache=cookie_cache,
        record_ip=record_ip,
        max_sessions_per_user=max_sessions_per_user,
        on_session_limit=on_session_limit,
        owner=owner,
    )
    if dbsc is not None:
        engine.dbsc = _dbsc_runtime(dbsc, engine, owner)
    _extras(engine, events, telemetry, remember, clear_site_data, anomaly, owner, cookie_options)
    return engine


def _extras(
    engine: Engine,
    events: object,
    telemetry: object,
    remember: object,
    clear_site_data: object,
    anomaly: object,
    owner: str,
    cookie_options: dict[str, Any],
) -> None:
    """Events, telemetry, remember-me, Clear-Site-Data and the anomaly hook, checked."""
    if events is not None and not isinstance(events, Events):
        raise ConfigurationError(
            f"{owner} expects events to be sessionware.events.Events(...) or None, got {events!r}"
        )
    engine.events = events
    engine.telemetry = check_telemetry(telemetry, owner)
    engine.observed = events is not None or telemetry is not None
    if engine.telemetry is not None and engine.registry_store is not None:
        engine.registry_store = Instrumented(engine.registry_store, engine.telemetry, is_async=False)
    if type(clear_site_data) is not bool:
        raise ConfigurationError(
            f"{owner} expects clear_site_data to be True or False, got {clear_site_data!r}"
        )
    engine.clear_site_data = clear_site_data
    if anomaly is not None and not callable(anomaly):
        raise ConfigurationError(
            f"{owner} expects anomaly to be a function (session, changes) -> 'allow' | 'reauth' | 'drop' "
            f"(such as sessionware.anomaly.default_policy) or None, got {anomaly!r}"
        )
    engine.anomaly = anomaly
    if remember is not None:
        engine.remember = _remember_runtime(remember, engine, owner, cookie_options)
    engine.extras = bool(engine.observed or remember is not None or clear_site_data or anomaly is not None)


def _remember_runtime(remember: object, engine: Engine, owner: str, cookie_options: dict[str, Any]) -> Any:
    from . import _remember

    if not isinstance(remember, RememberMe):
        raise ConfigurationError(
            f"{owner} expects remember to be sessionware.RememberMe(...) or None, got {remember!r}"
        )
    registry: object = engine.registry_store
    if not isinstance(registry, Registry | AsyncRegistry):
        raise ConfigurationError(
            f"{owner} needs a store with a per-user registry for remember= (a server-side store, or "
            "CookieStore(revocation=...)): tokens are kept there, and revoked with the user's sessions"
        )
    if remember.cookie_name in (
        engine.cookie.name,
        engine.cookie.name_for(False),
        engine.cookie.name_for(True),
    ):
        raise ConfigurationError(
            f"{owner} expects RememberMe's cookie_name to differ from the session cookie's, both are "
            f"{remember.cookie_name!r}"
        )
    cookie = CookieAttributes(remember.cookie_name, prefix="auto", owner=owner, **cookie_options)
    return _remember.Runtime(remember, engine, cookie)


def _dbsc_runtime(dbsc: object, engine: Engine, owner: str) -> Runtime:
    """DBSC for ``engine``, or a ConfigurationError saying what to change."""
    if not isinstance(dbsc, DBSC):
        raise ConfigurationError(f"{owner} expects dbsc to be a sessionware.DBSC(...) or None, got {dbsc!r}")
    if not engine.server_side and engine.revocation is None:
        raise ConfigurationError(
            f"{owner} expects a server-side store, or a CookieStore with a revocation store, with "
            "dbsc=: the device's public key and the single-use challenges must be kept on the "
            "server; pass store=CookieStore(revocation=SQLiteStore(...)) or a server-side store "
            "(SQLiteStore(...), RedisStore(...), PostgresStore(...), MemoryStore())"
        )
    if dbsc.bound_cookie_name in (engine.cookie.name_for(False), engine.cookie.name_for(True)):
        raise ConfigurationError(
            f"{owner} expects DBSC's bound_cookie_name to differ from the session cookie's name, "
            f"both are {dbsc.bound_cookie_name!r}"
        )
    return Runtime(dbsc, engine)
