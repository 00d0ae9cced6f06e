"""The request cycle, without I/O: open a session from a cookie, close it into a cookie.

The engine knows Plug's lifecycle and nothing about ASGI, WSGI or any store's
transport. Where it needs a store it *yields* a call (:class:`Load`,
:class:`Save`, :class:`Delete`) and is resumed with the result; the adapters
drive it with :func:`run_sync` or :func:`run_async`. One lifecycle, two tiny
drivers: there is no second copy of the rules to drift.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple, TypeVar

from . import _record
from ._codec import GROUP_SIZE, MAX_COOKIE_BYTES, IdCodec, b64encode
from ._cookies import CookieAttributes, find_cookie
from ._expiry import Expiry
from ._keys import KeyRing, SecretInput
from ._session import DROP, IGNORE, LOG_OUT, NONE, RENEW, Session
from ._verified import VerifiedCache
from .errors import (
    ConfigurationError,
    InvalidCookie,
    SessionError,
    SessionLimitReached,
    SessionTooLarge,
    StoreError,
)
from .stores.cookie import CookieCodec, CookieStore
from .typing import AsyncRegistry, AsyncStore, Registry, Store

__all__ = ["Delete", "Engine", "Load", "Save", "run_async", "run_sync"]

logger = logging.getLogger("sessionware")

T = TypeVar("T")

#: A server-side session with no deadline is kept this long after its last write
#: (the longest lifetime browsers grant a cookie).
UNLIMITED_TTL = 400 * 24 * 3600
#: How often a save is retried when concurrent requests keep changing the record.
MAX_SAVE_ATTEMPTS = 10
#: Random bytes in a cookie session's own ID (server-side sessions use 32-byte IDs).
SESSION_ID_BYTES = 16


class Load(NamedTuple):
    key: str

    def apply(self, store: Any) -> Any:
        return store.load(self.key)


class Save(NamedTuple):
    key: str
    data: bytes
    ttl: int
    version: int | None
    user: str | None

    def apply(self, store: Any) -> Any:
        return store.save(self.key, self.data, self.ttl, self.version, self.user)


class Delete(NamedTuple):
    key: str

    def apply(self, store: Any) -> Any:
        return store.delete(self.key)


class ListUser(NamedTuple):
    user: str

    def apply(self, store: Any) -> Any:
        return store.user_sessions(self.user)


class DeleteUser(NamedTuple):
    user: str
    keep: str | None

    def apply(self, store: Any) -> Any:
        return store.delete_user_sessions(self.user, self.keep)


Call = Load | Save | Delete | ListUser | DeleteUser
Steps = Generator[Call, Any, T]


def _failed(store: object, call: Call, exc: Exception) -> StoreError:
    name = type(call).__name__.lower()
    return StoreError(f"{type(store).__name__}.{name}() failed: {exc!r}")


def run_sync(steps: Steps[T], store: Store | None) -> T:
    """Drive ``steps`` against a synchronous store."""
    try:
        call = next(steps)
        while True:
            try:
                result = call.apply(store)
            except SessionError:
                raise
            except Exception as exc:
                raise _failed(store, call, exc) from exc
            call = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(steps: Steps[T], store: AsyncStore | None) -> T:
    """Drive ``steps`` against an asynchronous store."""
    try:
        call = next(steps)
        while True:
            try:
                pending: Awaitable[Any] = call.apply(store)
                result = await pending
            except SessionError:
                raise
            except Exception as exc:
                raise _failed(store, call, exc) from exc
            call = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _allow_key(meta: dict[str, Any]) -> str | None:
    """The revocation store's key for a logged-in cookie session: ``"<group>/<hash of its ID>"``."""
    sid, group = meta.get("sid"), meta.get("grp")
    if not isinstance(sid, str) or not isinstance(group, str):
        return None
    return group + "/" + b64encode(hashlib.sha256(sid.encode()).digest())


# What the end of a request does, decided once for every kind of store.
NOTHING = 0  # send nothing
DELETE = 1  # drop: delete the record, expire the cookie
CREATE = 2  # a new record under a new ID (new session, or renew)
WRITE = 3  # the data changed: save the existing record
TOUCH = 4  # nothing changed, but activity is due to be recorded
REISSUE = 5  # nothing changed, but the cookie was made under an older secret


class Engine:
    """The sans-IO session lifecycle for one middleware configuration.

    Cookie stores need no I/O, so they use the plain :meth:`open_cookie` and
    :meth:`close_cookie`; server-side stores use the :meth:`open` and
    :meth:`close` generators, driven by :func:`run_sync` or :func:`run_async`.
    Both share :meth:`_verify`, :meth:`_session` and :meth:`_outcome`, where
    the rules live.
    """

    __slots__ = (
        "_codec",
        "_dump_data",
        "_empty_data",
        "_group_keys",
        "_handle_key",
        "_ids",
        "_load_data",
        "_revocation",
        "_targets",
        "_verified",
        "async_store",
        "cookie",
        "expiry",
        "keys",
        "record_ip",
        "registry_store",
        "session_class",
        "session_limit",
        "store",
    )

    def __init__(
        self,
        *,
        secret_key_base: SecretInput,
        store: CookieStore | Store | AsyncStore,
        cookie: CookieAttributes,
        expiry: Expiry,
        cookie_cache: int = 1024,
        record_ip: bool = False,
        max_sessions_per_user: int | None = None,
        on_session_limit: str = "evict_oldest",
        owner: str = "SessionMiddleware",
    ) -> None:
        if type(cookie_cache) is not int or cookie_cache < 0:
            raise ConfigurationError(
                f"{owner} expects cookie_cache to be a number of entries >= 0, got {cookie_cache!r}"
            )
        if type(record_ip) is not bool:
            raise ConfigurationError(f"{owner} expects record_ip to be True or False, got {record_ip!r}")
        self.keys = KeyRing(secret_key_base, owner=owner)
        self.record_ip = record_ip
        #: The class of the sessions made (adapters may use a subclass, as Flask's does).
        self.session_class: type[Session] = Session
        self._group_keys = self.keys.subkeys("user-group", cookie.name)
        self._handle_key = self.keys.subkeys("session-handle", cookie.name)[0]
        self.cookie = cookie
        self._targets = (cookie.name_for(False) + "=", cookie.name_for(True) + "=")
        self.expiry = expiry
        self.store = store
        self._codec: CookieCodec | None = None
        self._ids: IdCodec | None = None
        # Cookie value -> what it verified to: (Record, stale) for cookie stores,
        # (session ID, stale) for server-side ones.
        self._verified: VerifiedCache[Any] = VerifiedCache(cookie_cache)
        # The adapter's async face of the store the engine's steps run against:
        # the server-side store, or a cookie store's revocation store.
        self.async_store: AsyncStore | None = None
        self._revocation: Store | AsyncStore | None = None
        # How a record's data part is (de)serialized: JSON, unless the store's cookie
        # codec brings its own (the Phoenix store's Erlang terms).
        self._load_data: Callable[[bytes], dict[Any, Any]] = _record.load_data
        self._dump_data: Callable[[dict[Any, Any]], bytes] = _record.dump_data
        if isinstance(store, CookieStore):
            self._codec = store.cookie_codec(self.keys, cookie.name)
            self._load_data = getattr(self._codec, "load_data", _record.load_data)
            self._dump_data = getattr(self._codec, "dump_data", _record.dump_data)
            self._revocation = store.revocation
            self.registry_store: Store | AsyncStore | None = store.revocation
            if store.revocation is None:
                name = type(store).__name__
                logger.warning(
                    "sessionware: %s has no revocation store, so a copy of a session cookie "
                    "taken before log-out keeps working until the session expires; pass "
                    "%s(revocation=SQLiteStore(...)) (or another server-side store) to prevent it",
                    name,
                    name,
                )
        else:
            self._ids = IdCodec(self.keys, cookie.name)
            self.registry_store = store
        self._empty_data = self._dump_data({})
        self.session_limit: tuple[int, bool] | None = None  # (limit, reject?)
        if max_sessions_per_user is not None:
            if type(max_sessions_per_user) is not int or max_sessions_per_user < 1:
                raise ConfigurationError(
                    f"{owner} expects max_sessions_per_user to be a number >= 1 or None, "
                    f"got {max_sessions_per_user!r}"
                )
            if on_session_limit not in ("evict_oldest", "reject"):
                raise ConfigurationError(
                    f"{owner} expects on_session_limit to be 'evict_oldest' or 'reject', "
                    f"got {on_session_limit!r}"
                )
            registry: object = self.registry_store
            if not isinstance(registry, Registry | AsyncRegistry):
                raise ConfigurationError(
                    f"{owner} needs a store with a per-user registry for max_sessions_per_user (a "
                    "server-side store, or CookieStore(revocation=...))"
                )
            self.session_limit = (max_sessions_per_user, on_session_limit == "reject")

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
    def _user_of(store_key: str, meta_json: bytes) -> str | None:
        """The registry key a record is filed under: its user, in the record's own group."""
        if not meta_json:
            return None
        uid = _record.load_meta(meta_json).get("uid")
        return None if uid is None else store_key.split("/", 1)[0] + "/" + str(uid)

    @property
    def server_side(self) -> bool:
        return self._ids is not None

    # -- opening -----------------------------------------------------------------

    def new_session(self, now: int, *, had_cookie: bool = False) -> Session:
        session = Session.__new__(self.session_class)
        session._engine = self
        session._now = now
        if had_cookie:
            session._had_cookie = True
        return session

    def _refuse(self, reason: str, now: int) -> Session:
        logger.debug(
            "sessionware refused the %r session cookie (%s); this happens when the cookie was "
            "altered or truncated, made with a secret no longer configured, or has expired",
            self.cookie.name,
            reason,
        )
        return self.new_session(now, had_cookie=True)

    def _session(self, record: _record.Record, now: int, stale: bool) -> Session:
        """The session a verified, unexpired record holds."""
        session = Session.__new__(self.session_class)
        dict.update(session, self._load_data(record.data_json))
        session._engine = self
        session._now = now
        session._origin = record
        if stale:
            session._stale = True
        return session

    def open(self, cookie_header: str | None, now: int, https: bool = False) -> Session | Steps[Session]:
        """Turn the request's ``Cookie`` header (None if absent) into a Session.

        ``https`` says whether the request came over https, which decides the
        cookie's name when it is prefixed only there (see ``CookieAttributes``).

        Returns the Session, or -- when a store must be asked -- steps that
        produce it, for :func:`run_sync` or :func:`run_async` to drive.
        """
        if cookie_header is None:
            return self.new_session(now)
        name = self.cookie.name_for(https)
        value, count = find_cookie(cookie_header, name, self._targets[https])
        if value is None or count > 1:
            if count > 1:
                logger.warning(
                    "sessionware refused the %r session cookie: the request carried it %d times "
                    "(possibly one tossed in by another site); treating the request as anonymous",
                    name,
                    count,
                )
            return self.new_session(now, had_cookie=count > 0)
        if len(value) + len(name) >= MAX_COOKIE_BYTES:  # name=value over 4096: refused undecoded
            return self._refuse("size", now)
        if self._ids is not None:
            return self._load(value, now)
        assert self._codec is not None
        try:
            verified = self._verified.get(value)
            if verified is None:
                plaintext, stale = self._codec.decode(value)
                verified = _record.unpack(plaintext), stale
                self._verified.put(value, verified)
            record, stale = verified
            if not record.created_at:  # a format without times (a cookie Phoenix wrote): starts now
                record = _record.Record(now, now, record.auth_at, record.meta_json, record.data_json)
            if not self.expiry.is_valid(record.created_at, record.touched_at, now):
                raise InvalidCookie("expired")
            session = self._session(record, now, stale)
        except InvalidCookie as exc:
            return self._refuse(exc.reason, now)
        if self._revocation is not None and b'"uid"' in record.meta_json:
            return self._check_allowed(session, record, now)
        return session

    def _check_allowed(self, session: Session, record: _record.Record, now: int) -> Steps[Session]:
        """A logged-in cookie session stands only while its record is in the revocation store."""
        key = _allow_key(_record.load_meta(record.meta_json))
        if key is None:
            return self._refuse("revoked", now)
        loaded = yield Load(key)
        if loaded is None:
            return self._refuse("revoked", now)
        try:
            touched_at = _record.unpack(loaded[0]).touched_at
        except InvalidCookie:
            return self._refuse("revocation record", now)
        session._allow = (key, loaded[1], touched_at)
        return session

    def _load(self, value: str, now: int) -> Steps[Session]:
        assert self._ids is not None
        verified = self._verified.get(value)
        if verified is None:
            try:
                verified = self._ids.decode(value)  # a forged ID never reaches the store
            except InvalidCookie as exc:
                return self._refuse(exc.reason, now)
            self._verified.put(value, verified)
        session_id, stale = verified
        key = IdCodec.store_key(session_id)
        loaded = yield Load(key)
        if loaded is None:
            # Unknown or expired: the ID is never adopted; a write gets a fresh one.
            return self._refuse("unknown id", now)
        try:
            record = _record.unpack(loaded[0])
            if not self.expiry.is_valid(record.created_at, record.touched_at, now):
                yield Delete(key)
                raise InvalidCookie("expired")
            session = self._session(record, now, stale)
        except InvalidCookie as exc:
            return self._refuse(exc.reason, now)
        session._sid = session_id
        session._version = loaded[1]
        return session

    # -- closing -----------------------------------------------------------------

    def _outcome(self, session: Session, status: int, now: int) -> tuple[int, bytes]:
        """What the end of the request does, and the record to store if anything."""
        if session._read_only or status >= 500:
            return NOTHING, b""
        action = session._action
        if action == IGNORE:
            return NOTHING, b""
        if action == DROP:
            return DELETE, b""
        if action == LOG_OUT:
            if not dict.__len__(session):
                return DELETE, b""
            action = RENEW  # written to after log-out: a fresh anonymous session under a new ID
        origin = session._origin
        if session._stale and action == NONE and origin is not None and b'"uid"' in origin.meta_json:
            # Logged in under an older secret: renewed (times kept) so that it is filed
            # under the current secret's user group, or it would fall out of the
            # registry -- unlisted, unrevocable -- once the old secret is removed.
            action = RENEW
        if action == NONE and not session._dirty and session._lifecycle is None and session._meta is None:
            # The common read-only (or untouched) request: nothing to compare.
            if origin is None:
                return NOTHING, b""
            if self.expiry.touch_due(origin.touched_at, now):
                return TOUCH, _record.pack(
                    origin.created_at, now, origin.auth_at, origin.meta_json, origin.data_json
                )
            if session._stale:
                return REISSUE, _record.pack(*origin)
            return NOTHING, b""
        created, auth = session._times()
        meta = session._meta
        if origin is None:
            data_json = self._dump_data(session) if session._dirty else self._empty_data
            meta_json = _record.dump_meta(meta) if meta else b""
            changed = data_json != self._empty_data or meta_json != b"" or auth is not None
        else:
            data_json = self._dump_data(session) if session._dirty else origin.data_json
            meta_json = origin.meta_json if meta is None else _record.dump_meta(meta)
            changed = (
                data_json != origin.data_json
                or meta_json != origin.meta_json
                or auth != origin.auth_at
                or created != origin.created_at
            )
        if action == RENEW or origin is None:
            if not changed and action != RENEW:
                return NOTHING, b""  # a new session nobody wrote to: nothing stored, nothing sent
            if self._codec is not None:
                # A cookie session carries its own random ID, new on every renew, so a
                # copy of an earlier cookie can be told apart (and revoked); a logged-in
                # one also its user's group, which files its revocation record.
                fresh = {**_record.load_meta(meta_json), "sid": b64encode(os.urandom(SESSION_ID_BYTES))}
                if "uid" in fresh:
                    fresh["grp"] = b64encode(self.user_group(fresh["uid"]))
                else:
                    fresh.pop("grp", None)
                meta_json = _record.dump_meta(fresh)
            return CREATE, _record.pack(created, max(now, created), auth, meta_json, data_json)
        if changed:
            # max(): a server whose clock is behind the one that logged the user in
            # must not record activity before the session began (a corrupt record).
            return WRITE, _record.pack(created, max(now, created), auth, meta_json, data_json)
        if self.expiry.touch_due(origin.touched_at, now):
            return TOUCH, _record.pack(
                origin.created_at, now, origin.auth_at, origin.meta_json, origin.data_json
            )
        if session._stale:
            return REISSUE, _record.pack(*origin)
        return NOTHING, b""

    def close(self, session: Session, status: int, now: int, https: bool) -> str | Steps[str | None] | None:
        """Finish the request: the ``Set-Cookie`` value to send, or None.

        When a store must be written first, returns steps that produce it, for
        :func:`run_sync` or :func:`run_async` to drive.
        """
        outcome, record = self._outcome(session, status, now)
        if outcome == NOTHING:
            return None
        if self._ids is not None:
            return self._store(outcome, record, session, now, https)
        assert self._codec is not None
        if self._revocation is not None and (
            session._allow is not None
            or (outcome != DELETE and b'"uid"' in _record.unpack(record).meta_json)  # a log-in
        ):
            return self._revoking(outcome, record, session, now, https)
        if outcome == DELETE:
            return self.cookie.deletion(https=https) if session._had_cookie or session._origin else None
        return self._cookie_for(self._codec.encode(record), session, now, https)

    def _revoking(
        self, outcome: int, record: bytes, session: Session, now: int, https: bool
    ) -> Steps[str | None]:
        """A logged-in cookie session's changes, kept in step with its revocation record."""
        assert self._codec is not None
        old = session._allow
        if outcome == DELETE:
            if old is not None:
                yield Delete(old[0])
            return self.cookie.deletion(https=https) if session._had_cookie or session._origin else None
        # Made (and its size checked) before the store is touched: a session too
        # large for its cookie must not have revoked the one the browser holds.
        cookie = self._cookie_for(self._codec.encode(record), session, now, https)
        parsed = _record.unpack(record)
        if outcome == CREATE:
            meta = _record.load_meta(parsed.meta_json)
            key = _allow_key(meta)
            if key is not None:
                allowed = _record.pack(parsed.created_at, now, parsed.auth_at, parsed.meta_json, b"{}")
                ttl = self._ttl(parsed.created_at, now)
                user = self._user_of(key, parsed.meta_json)
                replaced = () if old is None else (old[0],)
                if user is not None:
                    yield from self._enforce_limit(user, keep=replaced, now=now, before=True)
                yield Save(key, allowed, ttl, None, user)
                if user is not None:
                    # The record being replaced is deleted below: it must not count,
                    # nor be evicted in its successor's place.
                    yield from self._enforce_limit(user, keep=(key, *replaced), now=now, before=False)
            if old is not None and not (yield Delete(old[0])):
                if key is not None:
                    yield Delete(key)  # renewing a session revoked meanwhile: not brought back
                return self._lost_renewal(session, https)
        elif old is not None and (outcome == TOUCH or self.expiry.touch_due(old[2], now)):
            # Activity is recorded in the revocation record too -- on a touch, and on a
            # write once a touch is due there -- or it would expire under a session in use.
            allowed = _record.pack(parsed.created_at, now, parsed.auth_at, parsed.meta_json, b"{}")
            ttl = self._ttl(parsed.created_at, now)
            yield Save(old[0], allowed, ttl, old[1], self._user_of(old[0], parsed.meta_json))
        return cookie

    def _store(
        self, outcome: int, record: bytes, session: Session, now: int, https: bool
    ) -> Steps[str | None]:
        assert self._ids is not None
        old_key = None if session._sid is None else IdCodec.store_key(session._sid)
        if outcome == DELETE:
            if old_key is not None:
                yield Delete(old_key)
            return self.cookie.deletion(https=https) if session._had_cookie or session._origin else None
        meta_json = _record.unpack(record).meta_json
        if outcome == CREATE:
            uid = _record.load_meta(meta_json).get("uid") if meta_json else None
            new_id = IdCodec.new_id(None if uid is None else self.user_group(uid))
            new_key = IdCodec.store_key(new_id)
            ttl = self._ttl(session._times()[0], now)
            user = self._user_of(new_key, meta_json)
            replaced = () if old_key is None else (old_key,)
            if user is not None:
                yield from self._enforce_limit(user, keep=replaced, now=now, before=True)
            yield Save(new_key, record, ttl, None, user)
            if user is not None:
                # The record being replaced is deleted below: it must not count,
                # nor be evicted in its successor's place.
                yield from self._enforce_limit(user, keep=(new_key, *replaced), now=now, before=False)
            if old_key is not None and not (yield Delete(old_key)):
                # Renewing a session a concurrent request dropped or revoked since this
                # one loaded it: it is not brought back under a new ID.
                yield Delete(new_key)
                logger.debug("sessionware did not renew a session deleted by a concurrent request")
                return self._lost_renewal(session, https)
            return self._cookie_for(self._ids.encode(new_id), session, now, https)
        assert old_key is not None
        assert session._sid is not None
        written = False
        if outcome == WRITE:
            written = yield from self._save_existing(session, old_key, record, now)
            if not written:
                return None
        elif outcome == TOUCH:
            origin = session._origin
            assert origin is not None
            ttl = self._ttl(origin.created_at, now)
            user = self._user_of(old_key, meta_json)
            # A failed compare-and-set means another request wrote, which recorded activity too.
            written = yield Save(old_key, record, ttl, session._version, user)
        # The ID cookie is re-sent only when an older secret signed it, or to
        # refresh a persistent cookie's Max-Age after a write.
        if session._stale or (written and self._persistent(session)):
            return self._cookie_for(self._ids.encode(session._sid), session, now, https)
        return None

    def _lost_renewal(self, session: Session, https: bool) -> str | None:
        """The cookie for a renewal that found its session deleted by a concurrent request.

        The app's own renewal (log-in, say) expires the cookie. A renewal the
        engine chose -- re-filing a session made under an older secret -- sends
        nothing: the concurrent request that won renewed it too, and its cookie
        must not be overwritten.
        """
        return None if session._action == NONE else self.cookie.deletion(https=https)

    def _enforce_limit(
        self, user: str, *, keep: tuple[str, ...], now: int, before: bool
    ) -> Generator[Call, Any, None]:
        """``max_sessions_per_user``: before a log-in, refuse it ("reject"); after it,
        end the least recently active sessions beyond the limit ("evict_oldest")."""
        if self.session_limit is None:
            return
        limit, reject = self.session_limit
        if before != reject:
            return
        live: list[tuple[int, str]] = []
        for key, raw in (yield ListUser(user)):
            try:
                record = _record.unpack(raw)
            except InvalidCookie:
                continue
            if key not in keep and self.expiry.is_valid(record.created_at, record.touched_at, now):
                live.append((record.touched_at, key))
        if reject:
            if len(live) >= limit:
                raise SessionLimitReached(limit)
            return
        live.sort()
        for _, key in live[: max(0, len(live) - (limit - 1))]:
            yield Delete(key)

    def _save_existing(
        self, session: Session, key: str, record: bytes, now: int
    ) -> Generator[Call, Any, bool]:
        """Compare-and-set ``record``; on a conflict merge this request's changes into
        the current record and retry. Returns False if the session is gone."""
        version = session._version
        ttl = self._ttl(session._times()[0], now)
        for _ in range(MAX_SAVE_ATTEMPTS):
            user = self._user_of(key, _record.unpack(record).meta_json)
            if (yield Save(key, record, ttl, version, user)):
                return True
            current = yield Load(key)
            if current is None:
                # Dropped, renewed or revoked by a concurrent request: never resurrected.
                logger.debug("sessionware did not save a session deleted by a concurrent request")
                return False
            try:
                record, ttl = self._merge(session, current[0], now)
            except InvalidCookie:
                return False
            version = current[1]
        raise StoreError(
            f"sessionware could not save the session: it changed under {MAX_SAVE_ATTEMPTS} "
            "concurrent writes in a row"
        )

    def _merge(self, session: Session, current_raw: bytes, now: int) -> tuple[bytes, int]:
        """This request's changes applied to a record another request has changed since.

        Keys this request set or deleted take its values (the last writer wins
        per key); every other key keeps the current record's value.
        """
        origin = session._origin
        assert origin is not None
        current = _record.unpack(current_raw)
        if not self.expiry.is_valid(current.created_at, current.touched_at, now):
            raise InvalidCookie("expired")
        before = _record.load_data(origin.data_json)
        merged = _record.load_data(current.data_json)
        dump = _record.dump_data
        for key, value in dict.items(session):
            if key not in before or dump({key: value}) != dump({key: before[key]}):
                merged[key] = value
        for key in before:
            if not dict.__contains__(session, key):
                merged.pop(key, None)
        meta_json = origin.meta_json if session._meta is None else _record.dump_meta(session._meta)
        created, auth = session._times()
        if meta_json != origin.meta_json or auth != origin.auth_at or created != origin.created_at:
            pass  # this request changed the lifecycle (a log-in, say): its version stands
        else:
            created, auth, meta_json = current.created_at, current.auth_at, current.meta_json
        record = _record.pack(created, max(now, created), auth, meta_json, dump(merged))
        return record, self._ttl(created, now)

    # -- cookies -----------------------------------------------------------------

    def _ttl(self, created_at: int, now: int) -> int:
        """Seconds the store keeps a record active now: to the nearer deadline."""
        ttl = self.expiry.ttl(created_at, now, now)
        return UNLIMITED_TTL if ttl is None else ttl

    def _persistent(self, session: Session) -> bool:
        return self.cookie.persistent if session._persistent is None else session._persistent

    def _cookie_for(self, value: str, session: Session, now: int, https: bool) -> str:
        size = len(self.cookie.name_for(https)) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(size, MAX_COOKIE_BYTES)
        max_age = self._ttl(session._times()[0], now) if self._persistent(session) else None
        return self.cookie.header(value, https=https, max_age=max_age)
