"""A user's sessions: list them, revoke one, revoke all ("log out everywhere").

The lifecycle lives in one place, as generators of store calls (like the
engine's); :class:`UserSessions` drives them synchronously (WSGI, the CLI) and
:class:`AsyncUserSessions` asynchronously (ASGI). Listings hand out opaque
handles, never session IDs: a handle is an HMAC of the store key, so it
identifies a session to its owner without being a credential.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from . import _record
from ._devices import Device, parse_device
from ._engine import Engine
from ._expiry import Expiry
from ._extras import publish_async, publish_sync
from ._keys import SecretInput
from ._session import Session
from ._steps import Call, Delete, DeleteUser, ListUser, run_async, run_sync
from .errors import InvalidCookie, NotSupported, StoreError
from .events import SessionEvent
from .typing import AsyncRegistry, AsyncStore, Registry, Store

__all__ = ["AsyncUserSessions", "SessionInfo", "UserSessions"]

T = TypeVar("T")
Steps = Generator[Call, Any, T]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's live sessions, as a listing shows it. Times are unix seconds.

    ``last_active`` moves at most once per ``touch_interval`` (it is the
    activity the store records anyway: no write is added for listings).
    """

    handle: str  #: pass to ``revoke``; not a session ID and not a credential
    user_id: str | int
    logged_in_at: int
    last_active: int
    expires_at: int | None
    user_agent: str | None  #: the raw string, as the browser sent it at log-in
    #: the client's network (``"203.0.113.0/24"``, IPv6 /48) with ``record_ip=True``, the
    #: whole address with ``record_ip="full"``, else None
    ip: str | None
    current: bool  #: the session of the request that asked
    #: bound to its browser's device key (DBSC; see ``sessionware.DBSC``)
    device_bound: bool = False
    #: the user agent as browser, version, OS and device type (see :class:`Device`)
    device: Device | None = None
    first_seen: int = 0  #: when this session began (its log-in)
    #: how it logged in: ``"password"``, ``"remember"`` (a remember-me cookie), or the app's
    #: ``log_in(how=...)`` (``"impersonation"``...)
    how: str = "password"

    @property
    def last_seen(self) -> int:
        """:attr:`last_active`, by the name device lists use."""
        return self.last_active


def _current_key(session: Session | None) -> str | None:
    """The key the store files ``session`` under (its record, or its revocation record)."""
    if session is None:
        return None
    if session._key is not None:
        return session._key
    return None if session._allow is None else session._allow[0]


def _listing(
    engine: Engine, user_id: str | int, current: Session | None, now: int
) -> Steps[list[SessionInfo]]:
    current_key = _current_key(current)
    infos: list[SessionInfo] = []
    for user_key in engine.user_keys(user_id):
        for key, head in (yield ListUser(user_key)):
            try:
                record = _record.unpack(head, b"{}")
            except InvalidCookie:
                continue
            meta = record.meta
            if str(meta.get("uid")) != str(user_id) or "rmb" in meta:  # rmb: a remember-me token
                continue
            expiry = engine.expiry_of(meta)
            if not expiry.is_valid(record.created_at, record.touched_at, now):
                continue
            infos.append(
                SessionInfo(
                    handle=engine.handle(key),
                    user_id=meta["uid"],
                    logged_in_at=record.auth_at or record.created_at,
                    last_active=record.touched_at,
                    expires_at=expiry.deadline(record.created_at, record.touched_at),
                    user_agent=meta.get("ua"),
                    ip=meta.get("ip"),
                    current=key == current_key,
                    device_bound=meta.get("dbsc") == 1,
                    device=parse_device(meta.get("ua")),
                    first_seen=record.created_at,
                    how=meta.get("how", "password"),
                )
            )
    infos.sort(key=lambda info: info.last_active, reverse=True)
    return infos


def _revoke(engine: Engine, user_id: str | int, handle: str) -> Steps[bool]:
    if not isinstance(handle, str) or len(handle) != 32 or not handle.isascii():
        return False  # not a handle this engine made (and compare_digest wants ASCII)
    for user_key in engine.user_keys(user_id):
        for key, _ in (yield ListUser(user_key)):
            if hmac.compare_digest(engine.handle(key), handle):
                return bool((yield Delete(key)))
    return False


def _forget_devices(engine: Engine, user_id: str | int) -> Steps[int]:
    """Delete the user's remember-me tokens (not their sessions)."""
    deleted = 0
    for user_key in engine.user_keys(user_id):
        for key, head in (yield ListUser(user_key)):
            try:
                meta = _record.unpack(head, b"{}").meta
            except InvalidCookie:
                continue
            if "rmb" in meta and (yield Delete(key)):
                deleted += 1
    return deleted


def _revoke_all(engine: Engine, user_id: str | int, keep: Session | None) -> Steps[int]:
    keep_key = _current_key(keep) if keep is not None and str(keep.user_id) == str(user_id) else None
    revoked = 0
    for user_key in engine.user_keys(user_id):
        revoked += yield DeleteUser(user_key, keep_key)
    if keep_key is not None and keep is not None:
        keep.renew()  # the session that stays gets a new ID too
        if engine.remember is not None:  # its remember-me token went with the others: a new one
            keep._meta_for_update()["rmi"] = keep._now
            keep._remember = "keep"
    return int(revoked)


def _check(engine: Engine) -> None:
    if not isinstance(engine.registry_store, Registry | AsyncRegistry):
        raise NotSupported(
            f"{engine.store!r} keeps no per-user registry, so a user's sessions cannot be listed "
            "or revoked; use MemoryStore, SQLiteStore, RedisStore or PostgresStore, or give a "
            "CookieStore a revocation store"
        )


class UserSessions:
    """List and revoke a user's sessions, synchronously (WSGI apps, scripts, the CLI).

    Every server-side store that ships with sessionware keeps the per-user
    registry this needs; listing costs O(that user's sessions). Store failures
    raise :class:`~sessionware.StoreError`: a revoke that did not happen never
    reports success.

    In a request, :func:`sessionware.wsgi.user_sessions` (or, for Flask,
    :func:`sessionware.flask.user_sessions`) gives one; in a script, a cron job
    or an admin shell, :meth:`for_store` makes one from the store and the app's
    secret, with no middleware.

    Example::

        sessions = UserSessions.for_store(SQLiteStore("sessions.db"), secret_key_base=secret)
        for info in sessions.list(user_id):
            print(info.handle, info.user_agent, info.last_active)
        sessions.revoke_all(user_id)
    """

    def __init__(
        self, engine: Engine, store: Store | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        _check(engine)
        self.engine = engine
        registry = store if store is not None else engine.registry_store
        assert registry is not None
        self.store = registry
        self.clock = clock
        #: The session of the request that made this (by ``user_sessions(request)``), if any:
        #: a store failure is noted on it, so the middleware answers the request with its 503
        #: even when the app turns the exception into a 500 response of its own.
        self.request_session: Session | None = None

    def _run(self, steps: Steps[T]) -> T:
        try:
            return run_sync(steps, self.store)
        except StoreError as exc:
            if self.request_session is not None:
                self.request_session._store_error = exc
            raise

    @classmethod
    def for_store(
        cls,
        store: Any,
        *,
        secret_key_base: SecretInput,
        cookie_name: str | None = None,
        expiry: Expiry | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> UserSessions:
        """The sessions in ``store`` of an app with this ``secret_key_base``, for scripts.

        ``cookie_name`` and ``expiry`` must be the app's (its middleware's
        options; both default as the middleware does): a user's sessions are
        filed under keys derived from the secret and the cookie name, and only
        sessions still valid under the expiry are listed. ``store`` is the
        app's server-side store, or its ``CookieStore(revocation=...)``.
        """
        from ._config import build_engine

        engine = build_engine(
            secret_key_base=secret_key_base,
            store=store,
            cookie_name=cookie_name,
            expiry=expiry,
            owner="UserSessions.for_store",
        )
        return cls(engine, clock=clock)

    def list(self, user_id: str | int, *, current: Session | None = None) -> list[SessionInfo]:
        """The user's live sessions, most recently active first."""
        now = int(self.clock())
        return self._run(_listing(self.engine, user_id, current, now))

    def revoke(self, user_id: str | int, handle: str) -> bool:
        """End the session with this handle, if it is one of the user's; say whether it was."""
        done = self._run(_revoke(self.engine, user_id, handle))
        if done and self.engine.observed:
            publish_sync(self.engine, _revoked(self, user_id, "one", handle, 1))
        return done

    def revoke_all(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """End all of the user's sessions except ``keep`` (which is renewed) and delete all
        their remember-me tokens ("log out everywhere"); return how many sessions and tokens."""
        count = self._run(_revoke_all(self.engine, user_id, keep))
        if self.engine.observed:
            publish_sync(self.engine, _revoked(self, user_id, "all", None, count))
        return count

    def password_changed(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """Call when the user's password changes: every session but ``keep`` and every
        remember-me token of the user end (exactly :meth:`revoke_all`)."""
        return self.revoke_all(user_id, keep=keep)

    def forget_devices(self, user_id: str | int) -> int:
        """Delete the user's remember-me tokens only (their sessions go on); return how many."""
        return self._run(_forget_devices(self.engine, user_id))


class AsyncUserSessions:
    """:class:`UserSessions` for ASGI apps; get it with :func:`sessionware.user_sessions`."""

    def __init__(
        self, engine: Engine, store: AsyncStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        _check(engine)
        self.engine = engine
        self.store = store if store is not None else engine.async_store
        self.clock = clock
        #: As :attr:`UserSessions.request_session`.
        self.request_session: Session | None = None

    async def _run(self, steps: Steps[T]) -> T:
        try:
            return await run_async(steps, self.store)
        except StoreError as exc:
            if self.request_session is not None:
                self.request_session._store_error = exc
            raise

    async def list(self, user_id: str | int, *, current: Session | None = None) -> list[SessionInfo]:
        """The user's live sessions, most recently active first."""
        now = int(self.clock())
        return await self._run(_listing(self.engine, user_id, current, now))

    async def revoke(self, user_id: str | int, handle: str) -> bool:
        """End the session with this handle, if it is one of the user's; say whether it was."""
        done = await self._run(_revoke(self.engine, user_id, handle))
        if done and self.engine.observed:
            await publish_async(self.engine, _revoked(self, user_id, "one", handle, 1))
        return done

    async def revoke_all(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """As :meth:`UserSessions.revoke_all`."""
        count = await self._run(_revoke_all(self.engine, user_id, keep))
        if self.engine.observed:
            await publish_async(self.engine, _revoked(self, user_id, "all", None, count))
        return count

    async def password_changed(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """As :meth:`UserSessions.password_changed`."""
        return await self.revoke_all(user_id, keep=keep)

    async def forget_devices(self, user_id: str | int) -> int:
        """As :meth:`UserSessions.forget_devices`."""
        return await self._run(_forget_devices(self.engine, user_id))


def _revoked(
    users: UserSessions | AsyncUserSessions, user_id: str | int, reason: str, handle: str | None, count: int
) -> list[SessionEvent]:
    session = users.request_session
    scope = None if session is None else session._scope
    path = scope.get("path", scope.get("PATH_INFO")) if isinstance(scope, dict) else None
    return [SessionEvent("revoke", int(users.clock()), user_id, handle, reason, path, None, count)]
