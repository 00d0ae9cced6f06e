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
from ._engine import Engine
from ._expiry import Expiry
from ._keys import SecretInput
from ._session import Session
from ._steps import Call, Delete, DeleteUser, ListUser, run_async, run_sync
from .errors import InvalidCookie, NotSupported, StoreError
from .typing import AsyncRegistry, AsyncStore, Registry, Store

__all__ = ["AsyncUserSessions", "SessionInfo", "UserSessions"]

T = TypeVar("T")
Steps = Generator[Call, Any, T]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's live sessions, as a listing shows it. Times are unix seconds."""

    handle: str  #: pass to ``revoke``; not a session ID and not a credential
    user_id: str | int
    logged_in_at: int
    last_active: int
    expires_at: int | None
    user_agent: str | None
    ip: str | None  #: only when the middleware has ``record_ip=True``
    current: bool  #: the session of the request that asked
    #: bound to its browser's device key (DBSC; see ``sessionware.DBSC``)
    device_bound: bool = False


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
            if str(meta.get("uid")) != str(user_id):
                continue
            if not engine.expiry.is_valid(record.created_at, record.touched_at, now):
                continue
            infos.append(
                SessionInfo(
                    handle=engine.handle(key),
                    user_id=meta["uid"],
                    logged_in_at=record.auth_at or record.created_at,
                    last_active=record.touched_at,
                    expires_at=engine.expiry.deadline(record.created_at, record.touched_at),
                    user_agent=meta.get("ua"),
                    ip=meta.get("ip"),
                    current=key == current_key,
                    device_bound=meta.get("dbsc") == 1,
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


def _revoke_all(engine: Engine, user_id: str | int, keep: Session | None) -> Steps[int]:
    keep_key = _current_key(keep) if keep is not None and str(keep.user_id) == str(user_id) else None
    revoked = 0
    for user_key in engine.user_keys(user_id):
        revoked += yield DeleteUser(user_key, keep_key)
    if keep_key is not None and keep is not None:
        keep.renew()  # the session that stays gets a new ID too
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
        return self._run(_revoke(self.engine, user_id, handle))

    def revoke_all(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """End all of the user's sessions except ``keep`` (which is renewed); return how many."""
        return self._run(_revoke_all(self.engine, user_id, keep))


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
        return await self._run(_revoke(self.engine, user_id, handle))

    async def revoke_all(self, user_id: str | int, *, keep: Session | None = None) -> int:
        """End all of the user's sessions except ``keep`` (which is renewed); return how many."""
        return await self._run(_revoke_all(self.engine, user_id, keep))
