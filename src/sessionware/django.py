"""Django: a session engine, ``SESSION_ENGINE = "sessionware.django"``.

Django's own ``SessionMiddleware``, ``django.contrib.auth`` and everything that
uses ``request.session`` work unchanged; the sessions are sessionware's, on the
same engine as its ASGI, WSGI and Flask adapters::

    # settings.py
    SESSION_ENGINE = "sessionware.django"
    SESSIONWARE = {"store": "redis://localhost:6379/0"}

The session key Django puts in the cookie is sessionware's signed session ID:
a forged or unknown key never reaches the store and is never adopted (a new
session gets a new key), and the store files each session under a SHA-256 hash
of its ID, so a copy of the store holds no usable cookie.

Options (the keys of ``settings.SESSIONWARE``; a bad one raises
``ImproperlyConfigured`` on first use, naming it):

    store: Where sessions live. Required. A URL, as the command line takes
        them -- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
        ``redis://host:6379/0``, ``rediss://...``, ``redis+cluster://host:7000``,
        ``postgresql://user@host/db``, ``memory:`` -- or a store object
        (``SQLiteStore(...)``, ``RedisStore(...)``...). A PostgreSQL table is
        created with ``python -m sessionware migrate --store postgresql://...``.
    store_options: Keyword arguments for the store a URL names (``{"prefix":
        "myapp:"}`` for Redis, ``{"table": "app_sessions"}`` for SQL).
        Defaults to none.
    secret_key_base: The secret the session IDs are signed with, or a list of
        them (the first signs, all verify: put a new one first to rotate).
        Defaults to ``[SECRET_KEY, *SECRET_KEY_FALLBACKS]``, which must then be
        at least 32 random characters each.
    expiry: How long a session lives: an :class:`~sessionware.Expiry` or a
        preset name (``"aal1"``, ``"aal2"``, ``"aal3"``). Defaults to
        ``Expiry(idle_timeout=None, absolute_timeout=SESSION_COOKIE_AGE)``:
        a session ends ``SESSION_COOKIE_AGE`` seconds after it began (a log-in
        begins it anew), however active. ``set_expiry()`` can end a session
        sooner, not later.
    record_ip: Record the client's address with the log-in, for the list of a
        user's sessions. Defaults to ``False``.
    max_sessions_per_user: At most this many sessions per logged-in user
        (``None``: no limit, the default); ``on_session_limit`` is
        ``"evict_oldest"`` (the default) or ``"reject"``.
    cookie_cache: How many recently verified session keys to remember, to skip
        their HMAC. Defaults to 1024.
    clock: A function returning unix seconds, for tests. Defaults to ``time.time``.
    events: :class:`sessionware.events.Events`, hooks called as each load,
        save and ``flush()`` is done: a log-in (``login()``), a log-out
        (``logout()`` of a loaded session), a renewal, a refused key, a
        revocation through :func:`user_sessions`. Defaults to none.
    telemetry: :class:`sessionware.telemetry.OpenTelemetry`: the metrics of
        ``docs/events.md`` and a span per store call. Defaults to none.
    legacy: Readers of the sessions the previous ``SESSION_ENGINE`` wrote, so
        that switching logs nobody out: a reader from :mod:`sessionware.legacy`
        (``DjangoDB`` for ``db`` and ``cached_db``, ``DjangoCache`` for
        ``cache`` on Redis, ``DjangoSignedCookies``) or a list of them. A key
        that found no sessionware session is read once; its data and log-in
        are saved under a new key. Defaults to none.

Django's settings that apply: ``SESSION_COOKIE_NAME`` (the key derivation is
bound to it), ``SESSION_COOKIE_AGE`` (the default lifetime and the cookie's
``Max-Age``), ``SESSION_EXPIRE_AT_BROWSER_CLOSE``, ``SESSION_SAVE_EVERY_REQUEST``
and the other ``SESSION_COOKIE_*`` settings (read by Django's middleware, which
sets the cookie). ``SESSION_SERIALIZER`` does not: session data is always JSON.

What Django's backends lack, on top:

- a log-in (``django.contrib.auth.login``) binds the session to the user, so
  :func:`user_sessions` lists and revokes a user's sessions ("log out
  everywhere", a device list) from a view, the admin (:func:`log_out_everywhere`)
  or the command line (``python -m sessionware sessions list --store URL
  --cookie-name sessionid --user 42``);
- a save writes only the keys that request changed, in one atomic store
  operation: concurrent requests of one session keep each other's changes to
  other keys, and in-place edits of nested values are saved with the next save;
- a session deleted by another request (a log-out) is never written back: the
  save raises ``UpdateError``, which Django's middleware answers with a 400;
- Redis Cluster, and an absolute timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.http import HttpRequest

from ._closing import close_session
from ._django_config import Configured, current
from ._django_steps import Steps, deleting, fresh, needs_save, opening, watched
from ._extras import events_of, publish_async, publish_sync
from ._registry import AsyncUserSessions, UserSessions
from ._session import Session
from ._steps import run_async, run_sync
from .errors import ConfigurationError
from .events import SessionEvent
from .legacy import Found, adopt, aforget_old, aread_old_key, forget_old, read_old_key
from .typing import Purgeable

__all__ = ["SessionStore", "async_user_sessions", "current_session", "log_out_everywhere", "user_sessions"]


class SessionStore(SessionBase):
    """Django's ``SessionBase`` over a sessionware session and store.

    Constructed as Django does (``SessionStore()``, ``SessionStore(session_key)``)
    and lazy: nothing is loaded until the data is used. Every method has its
    ``a...`` twin, which uses the store's asyncio face.

    ``session_key`` is sessionware's signed session ID; ``save()`` gives a new
    session (and ``cycle_key()`` an existing one) a new key, which Django's
    middleware puts in the cookie. After a save the next use of the data reads
    the store again.
    """

    _session_cache: Session

    def __init__(self, session_key: str | None = None) -> None:
        self._modified = False
        #: The key this object last saved under: if it is gone when next loaded, a
        #: concurrent request deleted the session, and saving raises UpdateError.
        self._saved_key: str | None = None
        self._interrupted = False
        super().__init__(session_key)

    # -- Django's flags ---------------------------------------------------------

    @property
    def modified(self) -> bool:
        """Django's flag -- or sessionware has something to write: a renewal, a log-in,
        a key made under an older secret, or activity due to be recorded."""
        if self._modified:
            return True
        session: Session | None = self.__dict__.get("_session_cache")
        return session is not None and needs_save(session)

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = bool(value)

    @property
    def sessionware(self) -> Session:
        """The sessionware :class:`~sessionware.Session` under this one (loaded on first use):
        ``log_in``, ``renew``, ``user_id``, ``created_at``... and ``keep=`` for
        :meth:`UserSessions.revoke_all`."""
        return self._get_session()

    def bind_user(self, user_id: str | int, request: HttpRequest | None = None) -> None:
        """Bind the session to ``user_id`` (``user_logged_in`` does it): a new key, the
        data kept, the user's agent recorded, listed among the user's sessions."""
        session = self._get_session()
        session._scope = None if request is None else request.META
        session.log_in(user_id, keep=list(dict.keys(session)))
        self.modified = True

    # -- loading ----------------------------------------------------------------

    def _get_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        try:
            cached: Session = self._session_cache
            return cached
        except AttributeError:
            if self.session_key is None or no_load:
                self._session_cache = fresh(current())
            else:
                self._session_cache = self.load()
        return self._session_cache

    async def _aget_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        try:
            cached: Session = self._session_cache
            return cached
        except AttributeError:
            if self.session_key is None or no_load:
                self._session_cache = fresh(current())
            else:
                self._session_cache = await self.aload()
        return self._session_cache

    _session = property(_get_session)

    def load(self) -> Session:
        configured = current()
        key = self.session_key
        session = self._loaded(run_sync(opening(configured, key), configured.store))
        found = None
        if configured.legacy and self._legacy_key(session, key):
            assert key is not None
            found = read_old_key(configured.legacy, key, configured.now())
        if configured.engine.observed:
            publish_sync(configured.engine, _opened(configured, session, found))
        self._adopt(session, found)
        return session

    async def aload(self) -> Session:
        configured = current()
        key = self.session_key
        steps = opening(configured, key)
        session = self._loaded(await run_async(steps, configured.async_store()))
        found = None
        if configured.legacy and self._legacy_key(session, key):
            assert key is not None
            found = await aread_old_key(configured.legacy, key, configured.now())
        if configured.engine.observed:
            await publish_async(configured.engine, _opened(configured, session, found))
        self._adopt(session, found)
        return session

    def _loaded(self, session: Session) -> Session:
        if session._origin is None:
            # Unknown, forged, expired or deleted: never adopted; a save makes a new key.
            if self.session_key is not None and self.session_key == self._saved_key:
                self._interrupted = True  # deleted since this object saved it
            self._session_key = None
        return session

    def _legacy_key(self, session: Session, key: str | None) -> bool:
        """Whether ``key``, which found no session, may be one the previous engine made."""
        return session._origin is None and bool(key) and not self._interrupted and not session._dirty

    def _adopt(self, session: Session, found: Found | None) -> None:
        """The previous engine's session becomes this one: its data and log-in, saved under a new key."""
        if found is None:
            return
        adopt(session, found, found.reader.cookie_name)
        self.modified = True  # Django's middleware saves it and sets the new key's cookie

    def exists(self, session_key: str | None) -> bool:
        configured = current()
        return run_sync(opening(configured, session_key), configured.store)._origin is not None

    async def aexists(self, session_key: str | None) -> bool:
        configured = current()
        session = await run_async(opening(configured, session_key), configured.async_store())
        return session._origin is not None

    # -- saving -----------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None and not self._interrupted:
            self.create()  # as Django's database backend does (and so marked modified)
            return
        if must_create:
            raise CreateError  # this key exists: it was made by a save
        self._save_sync(current())

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None and not self._interrupted:
            await self.acreate()
            return
        if must_create:
            raise CreateError
        await self._save_async(current())

    def create(self) -> None:
        self._save_sync(current(), new=True)
        self.modified = True

    async def acreate(self) -> None:
        await self._save_async(current(), new=True)
        self.modified = True

    def cycle_key(self) -> None:
        """A new key for the same data; the old key stops working (Django's ``login`` calls it)."""
        self._save_sync(current(), renew=True)

    async def acycle_key(self) -> None:
        await self._save_async(current(), renew=True)

    def _save_sync(self, configured: Configured, *, new: bool = False, renew: bool = False) -> None:
        saved = run_sync(self._saving(configured, new=new, renew=renew), configured.store)
        if saved is None:
            return
        session, closed = saved
        if session._legacy is not None:
            forget_old(session)  # saved: the previous engine's record can go
        if configured.engine.observed:
            publish_sync(configured.engine, _events(configured, session, closed))

    async def _save_async(self, configured: Configured, *, new: bool = False, renew: bool = False) -> None:
        saved = await run_async(self._saving(configured, new=new, renew=renew), configured.async_store())
        if saved is None:
            return
        session, closed = saved
        if session._legacy is not None:
            await aforget_old(session)
        if configured.engine.observed:
            await publish_async(configured.engine, _events(configured, session, closed))

    def _saving(
        self, configured: Configured, *, new: bool = False, renew: bool = False
    ) -> Steps[tuple[Session, str | None] | None]:
        """Write the session: one atomic update of what changed, or a record under a new key.

        ``new``: a new record with this data (the old one, if any, is left as
        it is, as Django's ``create()`` does); ``renew``: the same, deleting the
        old one (``cycle_key()``).
        """
        engine = configured.engine
        now = configured.now()
        session: Session | None = self.__dict__.get("_session_cache")
        if session is None and self.session_key is not None:
            session = self._loaded((yield from opening(configured, self.session_key)))
        if self._interrupted and not (new or renew):
            raise UpdateError  # a concurrent request deleted the session since this object saved it
        if session is None:
            session = fresh(configured)
        if self.session_key is None:
            new = True  # nothing stored under a key: a new record
        if new and session._origin is not None:
            copy = fresh(configured, now)
            copy.update(dict(dict.items(session)))  # a write: every key goes into the new record
            copy._notes = session._notes  # a log-in noted before it, for the events
            session = copy
        if new or renew:
            notes = None if session._notes is None else list(session._notes)
            session.renew()
            if new or session.user_id is None:
                session._notes = notes  # a new key for a new or anonymous session is no event
        lost: list[bool] = []
        closed = close_session(engine, session, 200, now, False)
        if closed is not None and not isinstance(closed, str):
            closed = yield from watched(closed, session._key, lost)
        if lost:
            if renew:
                # cycle_key() of a session another request ended: it stays ended.
                self._session_key = None
                self._session_cache = fresh(configured, now)
                return None
            raise UpdateError  # deleted by a concurrent request: never written back
        if closed is not None:
            self._session_key = closed.split(";", 1)[0].partition("=")[2]
        self._saved_key = self.session_key
        self._interrupted = False
        # The session as loaded no longer describes the record: the next use reads it again.
        self.__dict__.pop("_session_cache", None)
        return session, closed

    # -- deleting ---------------------------------------------------------------

    def delete(self, session_key: str | None = None) -> None:
        configured = current()
        key = self.session_key if session_key is None else session_key
        run_sync(deleting(configured.engine, key), configured.store)

    async def adelete(self, session_key: str | None = None) -> None:
        configured = current()
        key = self.session_key if session_key is None else session_key
        await run_async(deleting(configured.engine, key), configured.async_store())

    def clear(self) -> None:
        # The loaded session's keys are removed (a save then removes them from the
        # record); a session not yet loaded is loaded first, to know what to remove.
        self._get_session()._clear_data()
        self.accessed = True
        self.modified = True

    def flush(self) -> None:
        """Log-out: the record is deleted (the key stops working) and the session starts afresh."""
        configured = current()
        ended = self.__dict__.get("_session_cache")
        self._session_cache = fresh(configured)
        self.accessed = True
        self.modified = True
        self.delete()
        self._session_key = None
        if ended is not None and ended._legacy is not None:
            forget_old(ended)  # logged out on the first request after the switch: the old one goes too
        if ended is not None and configured.engine.observed:
            publish_sync(configured.engine, _logged_out(configured, ended))

    async def aflush(self) -> None:
        configured = current()
        ended = self.__dict__.get("_session_cache")
        self._session_cache = fresh(configured)
        self.accessed = True
        self.modified = True
        await self.adelete()
        self._session_key = None
        if ended is not None and ended._legacy is not None:
            await aforget_old(ended)
        if ended is not None and configured.engine.observed:
            await publish_async(configured.engine, _logged_out(configured, ended))

    @classmethod
    def clear_expired(cls) -> None:
        """``manage.py clearsessions``: purge expired records (Redis expires them by itself)."""
        store = current().store
        if isinstance(store, Purgeable):
            store.purge_expired()

    @classmethod
    async def aclear_expired(cls) -> None:
        from asgiref.sync import sync_to_async

        await sync_to_async(cls.clear_expired)()


# -- events ----------------------------------------------------------------------------


def _events(
    configured: Configured, session: Session, closed: str | None, *, loaded: bool = False
) -> list[SessionEvent]:
    """What ``session`` noted (log-in, renewal, a refused key...), as events; telemetry's counts.

    Called as the session is loaded (``loaded``: its outcome is counted then)
    and after each save, so each event is reported once. Only for an engine
    that is ``observed`` (the callers check).
    """
    return events_of(configured.engine, session, closed, None, configured.now(), loaded=loaded)


def _opened(configured: Configured, session: Session, found: Found | None) -> list[SessionEvent]:
    """A load's events (a refused key, an expired session) and its telemetry outcome.

    A key the previous engine made, read by a reader (``found``), is no
    refused cookie: its note goes. The log-in adopting it makes is reported
    when that is saved.
    """
    if found is not None:
        session._notes = None
    return _events(configured, session, None, loaded=True)


def _logged_out(configured: Configured, ended: Session) -> list[SessionEvent]:
    """``flush()`` of a logged-in session: its ``log_out`` event."""
    if ended._origin is None or ended.user_id is None:
        return []
    ended._notes = None  # what it noted since its last save (a renewal) never happened
    ended.log_out()  # notes the log-out, with the user; the session object is discarded
    return _events(configured, ended, None)


# -- users ---------------------------------------------------------------------------


def _bind_on_log_in(sender: object, request: HttpRequest | None = None, user: Any = None, **_: Any) -> None:
    """``user_logged_in``: file the session under the user, for :func:`user_sessions`."""
    session = getattr(request, "session", None)
    if isinstance(session, SessionStore) and user is not None:
        session.bind_user(_user_id(user), request)


user_logged_in.connect(_bind_on_log_in, dispatch_uid="sessionware.django.log_in")


def _user_id(user: Any) -> str | int:
    pk = user.pk
    return pk if isinstance(pk, int | str) and not isinstance(pk, bool) else str(pk)


def current_session(request: HttpRequest) -> SessionStore:
    """``request.session``, typed as the :class:`SessionStore` it is (``.sessionware``...)."""
    session = getattr(request, "session", None)
    if not isinstance(session, SessionStore):
        raise ConfigurationError(
            "request.session is not a sessionware session: set SESSION_ENGINE = 'sessionware.django' "
            "and put django.contrib.sessions.middleware.SessionMiddleware in MIDDLEWARE"
        )
    return session


def user_sessions(request: HttpRequest | None = None) -> UserSessions:
    """List and revoke any user's sessions (synchronously), through the configured store.

    Pass the ``request`` to have its own session marked ``current`` in listings::

        sessions = user_sessions(request)
        mine = current_session(request).sessionware
        for info in sessions.list(request.user.pk, current=mine):
            ...
        sessions.revoke_all(request.user.pk, keep=mine)  # "log out everywhere else"
    """
    configured = current()
    users = UserSessions(configured.engine, configured.store, clock=configured.clock)
    session = getattr(request, "session", None)
    if isinstance(session, SessionStore):
        users.request_session = session.sessionware
    return users


def async_user_sessions(request: HttpRequest | None = None) -> AsyncUserSessions:
    """:func:`user_sessions` for async views: the same methods, awaited."""
    configured = current()
    users = AsyncUserSessions(configured.engine, configured.async_store(), clock=configured.clock)
    session = getattr(request, "session", None)
    if isinstance(session, SessionStore) and "_session_cache" in session.__dict__:
        users.request_session = session.sessionware
    return users


def log_out_everywhere(modeladmin: Any, request: HttpRequest, queryset: Sequence[Any]) -> None:
    """A Django admin action: end every session of the selected users.

    ``actions = [log_out_everywhere]`` on the user model's ``ModelAdmin``.
    """
    users = user_sessions()
    revoked = sum(users.revoke_all(_user_id(user)) for user in queryset)
    modeladmin.message_user(request, f"Ended {revoked} session(s) of {len(queryset)} user(s).")


log_out_everywhere.short_description = "Log the selected users out everywhere"  # type: ignore[attr-defined]
