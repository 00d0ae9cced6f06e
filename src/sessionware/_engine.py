"""One middleware configuration: keys, cookie, expiry and store, and what derives from them.

The request cycle itself lives in three sans-IO modules that take an
:class:`Engine`: :mod:`._loading` (a cookie becomes a Session),
:mod:`._closing` (a Session becomes a store write and a ``Set-Cookie``) and
:mod:`._lifecycle` (the store side of renew, log-in and log-out). Where they
need a store they yield calls (:mod:`._steps`) for the adapter to run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import _record
from ._codec import GROUP_SIZE, MAX_COOKIE_BYTES, IdCodec, b64encode
from ._cookies import CookieAttributes
from ._expiry import Expiry
from ._keys import KeyRing, SecretInput
from ._session import _NO_META, Session
from ._verified import VerifiedCache
from .errors import ConfigurationError, SessionError, SessionTooLarge
from .stores.cookie import CookieCodec, CookieStore
from .typing import AsyncRegistry, AsyncStore, Registry, Store

__all__ = ["UNLIMITED_TTL", "Engine", "engine_of"]

logger = logging.getLogger("sessionware")

#: A server-side session with no deadline is kept this long after its last write
#: (the longest lifetime browsers grant a cookie).
UNLIMITED_TTL = 400 * 24 * 3600


class Engine:
    """The sans-IO session machinery for one middleware configuration.

    Holds what every request of that middleware shares: the key ring and the
    subkeys derived from it, the cookie's attributes, the expiry rules, the
    store (and, for cookie stores, the cookie format), and the cache of
    recently verified cookie values.
    """

    __slots__ = (
        "_group_keys",
        "_handle_key",
        "anomaly",
        "async_store",
        "check_header",
        "clear_site_data",
        "codec",
        "cookie",
        "dbsc",
        "dump_data",
        "empty_data",
        "events",
        "expiry",
        "extras",
        "heads",
        "ids",
        "keys",
        "load_data",
        "observed",
        "persistent_expiry",
        "record_ip",
        "registry_store",
        "remember",
        "revocation",
        "session_class",
        "session_limit",
        "store",
        "targets",
        "telemetry",
        "verified",
    )

    def __init__(
        self,
        *,
        secret_key_base: SecretInput,
        store: CookieStore | Store | AsyncStore,
        cookie: CookieAttributes,
        expiry: Expiry,
        cookie_cache: int = 1024,
        record_ip: bool | str = False,
        max_sessions_per_user: int | None = None,
        on_session_limit: str = "evict_oldest",
        owner: str = "SessionMiddleware",
    ) -> None:
        if type(cookie_cache) is not int or cookie_cache < 0:
            raise ConfigurationError(
                f"{owner} expects cookie_cache to be a number of entries >= 0, got {cookie_cache!r}"
            )
        if type(record_ip) is not bool and record_ip != "full":
            raise ConfigurationError(
                f"{owner} expects record_ip to be True (the address's /24 or /48 network), "
                f"'full' (the whole address) or False, got {record_ip!r}"
            )
        self.keys = KeyRing(secret_key_base, owner=owner)
        self.record_ip = record_ip
        #: The class of the sessions made (adapters may use a subclass, as Flask's does).
        self.session_class: type[Session] = Session
        self._group_keys = self.keys.subkeys("user-group", cookie.name)
        self._handle_key = self.keys.subkeys("session-handle", cookie.name)[0]
        self.cookie = cookie
        #: What the ``Cookie`` header is searched for: the name on plain http, on https.
        self.targets = (cookie.name_for(False) + "=", cookie.name_for(True) + "=")
        self.expiry = expiry
        #: The expiry of sessions whose record metadata marks them persistent (``"p"``), when
        #: it is not ``expiry``: Flask's permanent sessions live PERMANENT_SESSION_LIFETIME.
        self.persistent_expiry: Expiry | None = None
        self.store = store
        #: The cookie format (cookie stores) or the signed-ID format (server-side stores).
        self.codec: CookieCodec | None = None
        self.ids: IdCodec | None = None
        #: Cookie value -> what it verified to: (Record, stale) for cookie stores,
        #: (session ID, store key, stale) for server-side ones.
        self.verified: VerifiedCache[str, Any] = VerifiedCache(cookie_cache)
        #: Server-side record head -> the Record it parsed to (with empty data).
        self.heads: VerifiedCache[bytes, _record.Record] = VerifiedCache(cookie_cache)
        #: The adapter's async face of the store the steps run against (set by the
        #: ASGI adapter): the server-side store, or a cookie store's revocation store.
        self.async_store: AsyncStore | None = None
        #: A cookie store's revocation store, or None.
        self.revocation: Store | AsyncStore | None = None
        # How a record's data part is (de)serialized: JSON, unless the store's cookie
        # codec brings its own (the Phoenix store's Erlang terms).
        self.load_data: Callable[[bytes], dict[Any, Any]] = _record.load_data
        self.dump_data: Callable[[dict[Any, Any]], bytes] = _record.dump_data
        #: A codec's own check of the whole ``Set-Cookie`` line (Plug's limit), if any.
        self.check_header: Callable[[str, bool], None] | None = None
        if isinstance(store, CookieStore):
            self.codec = store.cookie_codec(self.keys, cookie.name)
            self.check_header = getattr(self.codec, "check_header", None)
            self.load_data = getattr(self.codec, "load_data", _record.load_data)
            self.dump_data = getattr(self.codec, "dump_data", _record.dump_data)
            self.revocation = store.revocation
            self.registry_store: Store | AsyncStore | None = store.revocation
            if store.revocation is None and not store.cookie_only:
                _warn_no_revocation(type(store).__name__)
        else:
            self.ids = IdCodec(self.keys, cookie.name)
            self.registry_store = store
        self.empty_data = self.dump_data({})
        #: DBSC's runtime (``_dbsc_flow.Runtime``) when the middleware has ``dbsc=``, else None.
        self.dbsc: Any = None
        self.session_limit: tuple[int, bool] | None = None  # (limit, reject?)
        #: The app's lifecycle hooks (``sessionware.events.Events``) and OpenTelemetry
        #: (``sessionware.telemetry.OpenTelemetry``), or None; ``observed`` is True when
        #: either is set: only then do sessions note what happens to them.
        self.events: Any = None
        self.telemetry: Any = None
        self.observed = False
        #: Remember-me (``_remember.Runtime``), when the middleware has ``remember=``.
        self.remember: Any = None
        #: True when the adapters have work after opening or closing a session beyond the
        #: session's own (events, telemetry, remember-me, Clear-Site-Data, the anomaly hook).
        self.extras = False
        #: Send ``Clear-Site-Data`` when a session logs out (``log_out(clear_site_data=...)``).
        self.clear_site_data = False
        #: The anomaly hook (``sessionware.anomaly``), or None.
        self.anomaly: Any = None
        if max_sessions_per_user is not None:
            self.session_limit = self._limit(max_sessions_per_user, on_session_limit, owner)

    def _limit(self, limit: object, action: str, owner: str) -> tuple[int, bool]:
        if type(limit) is not int or limit < 1:
            raise ConfigurationError(
                f"{owner} expects max_sessions_per_user to be a number >= 1 or None, got {limit!r}"
            )
        if action not in ("evict_oldest", "reject"):
            raise ConfigurationError(
                f"{owner} expects on_session_limit to be 'evict_oldest' or 'reject', got {action!r}"
            )
        registry: object = self.registry_store
        if not isinstance(registry, Registry | AsyncRegistry):
            raise ConfigurationError(
                f"{owner} needs a store with a per-user registry for max_sessions_per_user (a "
                "server-side store, or CookieStore(revocation=...))"
            )
        return limit, action == "reject"

    @property
    def server_side(self) -> bool:
        return self.ids is not None

    # -- users ---------------------------------------------------------------------

    def user_group(self, user_id: str | int, secret: int = 0) -> bytes:
        """The ID group ``user_id``'s sessions share under a secret (keyed: reveals nothing).

        Sessions logged in under the current secret use the group of the
        current secret, and keep their group until they are renewed.
        """
        digest = hmac.new(self._group_keys[secret], str(user_id).encode(), hashlib.sha256).digest()
        return digest[:GROUP_SIZE]

    def user_keys(self, user_id: str | int) -> list[str]:
        """Every registry key ``user_id``'s sessions may be filed under: one per secret."""
        keys = [b64encode(self.user_group(user_id, n)) + "/" + str(user_id) for n in range(len(self.keys))]
        return list(dict.fromkeys(keys))

    def handle(self, store_key: str) -> str:
        """An opaque handle for a session in listings: not its ID, and no bearer token."""
        # Hex: URL-, form- and command-line-safe (a handle never starts with "-").
        return hmac.new(self._handle_key, store_key.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def user_of(store_key: str, meta: dict[str, Any]) -> str | None:
        """The registry key a record is filed under: its user, in the record's own group."""
        uid = meta.get("uid")
        return None if uid is None else store_key.split("/", 1)[0] + "/" + str(uid)

    # -- sessions ------------------------------------------------------------------

    def new_session(self, now: int, *, had_cookie: bool = False) -> Session:
        session = Session.__new__(self.session_class)
        session._engine = self
        session._now = now
        if had_cookie:
            session._had_cookie = True
        return session

    def refuse(self, reason: str, now: int, record: _record.Record | None = None) -> Session:
        """A fresh session for a request whose cookie was refused, with one debug line.

        ``record`` is the session's record when it was refused for its expiry.
        """
        session = self.new_session(now, had_cookie=True)
        if self.observed:
            if record is not None and reason == "expired":
                absolute = self.expiry_of(record.meta).absolute_timeout
                over = absolute is not None and now >= record.created_at + absolute
                session._note("expire", record.meta.get("uid"), "absolute" if over else "idle")
            else:
                session._note(
                    "invalid_cookie", None, _REASONS.get(reason, "malformed"), cookie=self.cookie.name
                )
        logger.debug(
            "sessionware refused the %r session cookie (%s); this happens when the cookie was "
            "altered or truncated, made with a secret no longer configured, or has expired",
            self.cookie.name,
            reason,
        )
        return session

    def expiry_of(self, meta: Mapping[str, Any]) -> Expiry:
        """The expiry of a session with this record metadata: :attr:`persistent_expiry` for
        one marked persistent, else :attr:`expiry`."""
        persistent = self.persistent_expiry
        return self.expiry if persistent is None or not meta.get("p") else persistent

    def ttl(self, created_at: int, now: int, meta: Mapping[str, Any] = _NO_META) -> int:
        """Seconds the store keeps a record active now: to the nearer deadline."""
        ttl = self.expiry_of(meta).ttl(created_at, now, now)
        return UNLIMITED_TTL if ttl is None else ttl

    def persistent(self, session: Session) -> bool:
        return self.cookie.persistent if session._persistent is None else session._persistent

    def cookie_for(self, value: str, session: Session, now: int, https: bool) -> str:
        """The ``Set-Cookie`` value for ``value``, or ``SessionTooLarge`` if a browser would drop it."""
        size = len(self.targets[https]) + len(value)  # "name=" and the value
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(size, MAX_COOKIE_BYTES)
        persistent = self.cookie.persistent if session._persistent is None else session._persistent
        max_age = self.ttl(session._times()[0], now, session._current_meta()) if persistent else None
        header = self.cookie.header(value, https=https, max_age=max_age, now=now)
        if self.check_header is not None:  # a codec with its own limit (Plug's, for the whole line)
            self.check_header(header, max_age is not None)
        return header

    def deletion(self, session: Session, https: bool) -> str | None:
        """The ``Set-Cookie`` that expires the session's cookie, if the browser has one."""
        return self.cookie.deletion(https=https) if session._had_cookie or session._origin else None


#: The refusal reasons of the codecs and the loader, as ``invalid_cookie`` events name them
#: (``sessionware.events.INVALID_COOKIE_REASONS``); any other is "malformed".
_REASONS = {
    "size": "oversize",
    "mac": "bad signature",
    "key": "unknown key",
    "expired": "expired",
    "revoked": "revoked",
    "unknown id": "revoked",
}


#: Cookie store classes whose missing revocation store this process has warned about.
_warned: set[str] = set()


def _warn_no_revocation(name: str) -> None:
    """The cookie-only trade-off, logged once per process (not per worker's every middleware)."""
    if name in _warned:
        return
    _warned.add(name)
    logger.warning(
        "sessionware: %s has no revocation store, so a copy of a session cookie taken before "
        "log-out keeps working until the session expires; pass %s(revocation=SQLiteStore(...)) "
        "(or another server-side store) to prevent it, or %s(revocation=False) to say that "
        "cookie-only sessions are deliberate (see the %s docstring for the trade-off)",
        name,
        name,
        name,
        name,
    )


def engine_of(session: Session) -> Engine:
    """The engine that made ``session`` (a SessionError if no middleware did)."""
    engine = session._engine
    if not isinstance(engine, Engine):
        raise SessionError("this session was not made by a sessionware middleware")
    return engine
