"""The session object apps read and write: a dict that knows what happened to it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Protocol, overload

from ._client import client_of, context_of, truncate_ip
from ._csrf import CSRF_SESSION_KEY  # Plug's key; sessionware.csrf keeps its secret there
from ._expiry import Expiry
from ._record import Record
from .errors import ReauthenticationRequired, SessionError, StoreError

__all__ = ["Session", "SessionContext"]


class SessionContext(Protocol):
    """What a session needs from the middleware that made it (an ``Engine``)."""

    @property
    def expiry(self) -> Expiry: ...

    def expiry_of(self, meta: Mapping[str, Any]) -> Expiry: ...

    @property
    def record_ip(self) -> bool | str: ...

    @property
    def observed(self) -> bool: ...


# Pending actions. WRITE is never stored: a write is any change of the data.
NONE: Final = 0
RENEW: Final = 1
IGNORE: Final = 2
DROP: Final = 3
LOG_OUT: Final = 4  # drop; but if the request writes afterwards, a fresh anonymous session
_ACTION_NAMES = {NONE: None, RENEW: "renew", IGNORE: "ignore", DROP: "drop", LOG_OUT: "log_out"}
_NO_META: dict[str, Any] = {}
_CONTAINERS = (dict, list)


class Session(dict[str, Any]):
    """The session: a ``dict`` of JSON values plus one pending action.

    Read and write it like a dict. sessionware notices reads (to send
    ``Vary: Cookie``) and changes, including in-place edits of nested values
    such as ``session["cart"].append(item)``: at the end of the request the
    data is serialized and compared with what was loaded, so there is no
    ``modified`` flag to set.

    Besides writing, a request can ask for one of three actions, as in Plug:

    - :meth:`renew` -- keep the data under a new session ID and delete the
      old record (do it on log-in, against session fixation);
    - :meth:`drop` -- delete the session and expire the cookie (log-out);
    - :meth:`ignore` -- send nothing back, whatever changed.

    A later write never undoes an action. ``drop`` is final; between
    ``renew`` and ``ignore`` the last call wins.

    Values must be JSON: ``dict`` (str keys), ``list``, ``str``, ``int``,
    ``float``, ``bool`` and ``None``. Anything else raises
    :class:`~sessionware.SerializationError` naming the key when the response
    is sent.

    Reading keys, ``len``, iteration, comparison and the properties below all
    count as reading the session (the response then gets ``Vary: Cookie``).
    One read escapes notice: ``json.dumps`` of an *empty* session, which the
    C encoder answers without asking the session anything. In a websocket
    handler the session is read-only: writes raise, and in-place edits of
    nested values are not saved.
    """

    # Per-request state. Class-level defaults keep opening a session cheap: only
    # what differs is set on the instance.
    _accessed = False
    _dirty = False
    _action = NONE
    _read_only = False
    _had_cookie = False  # a session cookie came in but was refused
    # Set-Cookie values the adapter adds when it sets the session cookie (expiring an
    # old library's cookie once its session was read: sessionware.legacy).
    _also_set: tuple[str, ...] = ()
    #: The old library's session this one was read from (``sessionware.legacy.Found``),
    #: deleted once this one is saved.
    _legacy: Any = None
    # Set by the engine: itself, this request's time, and what was loaded (the
    # record, None for a new session; for server-side stores the session ID, its
    # store key and the fields as stored; whether an older secret verified it).
    # The adapter sets the request scope (or WSGI environ), read only by log_in
    # for the client's description.
    _engine: SessionContext | None = None
    _scope: Any = None
    _now = 0
    _origin: Record | None = None
    _sid: bytes | None = None
    _key: str | None = None
    _fields: Mapping[str, str] | None = None
    _stale = False
    #: This session's cookie is persistent (True) or a browser-session one
    #: (False) whatever the middleware's ``persistent`` says; None follows it.
    _persistent: bool | None = None
    # a logged-in cookie session's record in the revocation store: (key, the
    # activity it last recorded)
    _allow: tuple[str, int] | None = None
    # A store failure of a call the app made through user_sessions(request): the
    # middleware answers with its 503 even if the app made a 500 of the exception.
    _store_error: StoreError | None = None
    # (created_at, auth_at) once this request changed them (log-in and the like);
    # None: as loaded.
    _lifecycle: tuple[int, int | None] | None = None
    # Lifecycle metadata kept beside the data (the cookie store's session ID, user
    # binding and the like); not part of the dict. None: unchanged since loading,
    # and not decoded unless someone asks (see _meta_for_update).
    _meta: dict[str, Any] | None = None
    # The session's DBSC binding (``_dbsc_state.Binding``) when its record has one and
    # the middleware has ``dbsc=``; None otherwise.
    _dbsc: Any = None
    # What happened to the session, for the app's event hooks and telemetry: (kind,
    # user ID, reason, extras) tuples, noted only when the engine is observed.
    _notes: list[tuple[str, Any, str | None, dict[str, Any]]] | None = None
    # The store key of the record a renewal created (set by the engine), for events.
    _new_key: str | None = None
    # Remember-me work for the end of the request: "issue" a token, or the
    # ``_remember`` module's other states; None: nothing.
    _remember: Any = None
    # Clear-Site-Data on this response (log_out's option); None: the middleware's.
    _clear_site_data: bool | None = None

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        if data:
            dict.update(self, data)

    # -- actions ---------------------------------------------------------------

    def renew(self) -> None:
        """Keep the data under a new session ID; the old ID stops working."""
        self._check_writable()
        if self._action not in (DROP, LOG_OUT):
            self._action = RENEW
            if self._observed():
                self._note("renew", self._current_meta().get("uid"), "renew")

    def _observed(self) -> bool:
        engine = self._engine
        return engine is not None and engine.observed

    def _note(self, kind: str, user_id: Any, reason: str | None, **extra: Any) -> None:
        """Note an event for the app's hooks and telemetry (see ``sessionware.events``)."""
        if self._notes is None:
            self._notes = []
        self._notes.append((kind, user_id, reason, extra))

    def drop(self) -> None:
        """End the session: delete its record and expire the cookie."""
        self._check_writable()
        if self._action != DROP and self._observed():
            uid = self._current_meta().get("uid")
            if uid is not None:
                self._note("log_out", uid, "drop")
        self._action = DROP
        dict.clear(self)

    def ignore(self) -> None:
        """Send nothing back for this request, whatever changed."""
        if self._action not in (DROP, LOG_OUT):
            self._action = IGNORE

    def log_in(
        self,
        user_id: str | int,
        *,
        keep: Iterable[str] = (),
        level: str | None = None,
        how: str = "password",
        remember: bool = False,
    ) -> None:
        """Log this session in as ``user_id``: the way to start an authenticated session.

        - the session gets a new ID (the pre-login one stops working: no
          session fixation), as with :meth:`renew`;
        - data from before the log-in is cleared, except the keys in ``keep``
          (say, a cart or a locale);
        - the absolute timeout restarts now and :attr:`auth_at` is now (but None
          for ``how="remember"``: a remember-me cookie proves the device, not the
          user, so :meth:`require_recent_auth` asks for the password);
        - the session is bound to the user, with the client's user agent (and
          IP address, if the middleware has ``record_ip=True``), so the user's
          sessions can be listed and revoked (:func:`sessionware.user_sessions`);
        - the CSRF secret is dropped (even if listed in ``keep``): the next
          form gets a token made after the log-in.

        ``user_id`` is a str or int, as the app identifies users. ``level`` is an
        optional label of how the user authenticated (``"aal2"``, ``"mfa"``...)
        that :meth:`require_recent_auth` can ask for. ``how`` says how the
        session came to be, for the user's list of sessions and the ``log_in``
        event: ``"password"`` (default), ``"impersonation"`` when an admin acts
        as the user, or any short word of the app's (``"remember"`` is what a
        remember-me log-in says; see :attr:`how`). ``remember=True`` also
        issues a remember-me cookie (needs the middleware's ``remember=``; see
        ``docs/remember-me.md``). Call ``log_in`` only once every factor has
        been checked: a half-authenticated user is not logged in.
        """
        self._check_writable()
        if self._action == DROP:
            raise SessionError("the session was dropped in this request; log_in needs a live session")
        if isinstance(user_id, bool) or not isinstance(user_id, str | int):
            raise SessionError(f"log_in expects user_id to be a str or int, got {type(user_id).__name__}")
        if isinstance(user_id, str) and not 0 < len(user_id) <= 256:
            raise SessionError("log_in expects user_id to be a non-empty string of at most 256 characters")
        if not isinstance(how, str) or not 0 < len(how) <= 32:
            raise SessionError("log_in expects how to be a short non-empty string, such as 'password'")
        if remember and getattr(self._engine, "remember", None) is None:
            raise SessionError(
                "log_in(remember=True) needs the middleware's remember= option "
                "(remember=RememberMe(max_age=...)); see docs/remember-me.md"
            )
        kept = {key: dict.__getitem__(self, key) for key in keep if dict.__contains__(self, key)}
        kept.pop(CSRF_SESSION_KEY, None)
        dict.clear(self)
        dict.update(self, kept)
        self._write()
        user_agent, ip = client_of(self._scope)
        meta: dict[str, Any] = {"uid": user_id}
        if user_agent:
            meta["ua"] = user_agent[:512]
        if ip and self._engine is not None and self._engine.record_ip:
            meta["ip"] = ip if self._engine.record_ip == "full" else truncate_ip(ip)
        if level is not None:
            meta["lvl"] = str(level)
        if how != "password":
            meta["how"] = how
        if getattr(self._engine, "anomaly", None) is not None:
            meta["cx"] = context_of(self._scope)  # compared on every request (sessionware.anomaly)
        if remember:
            meta["rmi"] = self._now  # when its remember-me token was issued (see _remember)
            self._remember = "issue"
        self._meta = meta
        # A remember-me log-in proves the device, not the user: no password was typed, so
        # no recent authentication (require_recent_auth asks for it; reauthenticated() sets it).
        self._lifecycle = (self._now, None if how == "remember" else self._now)
        self._action = RENEW
        if self._observed():
            self._note("log_in", user_id, how)

    def reauthenticated(self, *, level: str | None = None) -> None:
        """Record that the logged-in user has just proved who they are again.

        Both timeouts restart and :attr:`auth_at` is now (NIST SP 800-63B
        §5.2); the session gets a new ID and a new CSRF secret, as at log-in;
        a session a remember-me cookie logged in becomes a password one
        (:attr:`how`).
        ``level``, when given, replaces the authentication level.
        """
        self._check_writable()
        if self.user_id is None:
            raise SessionError("reauthenticated() needs a logged-in session; call log_in(user_id) instead")
        if self._action == DROP:
            raise SessionError("the session was dropped in this request")
        meta = self._meta_for_update()
        if level is not None:
            meta["lvl"] = str(level)
        if meta.get("how") == "remember":
            del meta["how"]  # the user has now typed the password: a password session from here
        if getattr(self._engine, "anomaly", None) is not None:
            meta["cx"] = context_of(self._scope)
        if dict.__contains__(self, CSRF_SESSION_KEY):
            self._write()
            dict.__delitem__(self, CSRF_SESSION_KEY)
        self._lifecycle = (self._now, self._now)
        self._action = RENEW
        if self._observed():
            self._note("renew", meta.get("uid"), "reauthenticated")

    @property
    def how(self) -> str | None:
        """How this session logged in: ``"password"``, ``"remember"`` (by a
        remember-me cookie: ask for the password before sensitive changes),
        what the app passed to :meth:`log_in` as ``how``, or None when not
        logged in."""
        self._accessed = True
        meta = self._current_meta()
        if meta.get("uid") is None:
            return None
        how: str = meta.get("how", "password")
        return how

    @property
    def auth_level(self) -> str | None:
        """The level given to :meth:`log_in` or :meth:`reauthenticated`, or None."""
        self._accessed = True
        level: str | None = self._current_meta().get("lvl")
        return level

    def recently_authenticated(self, max_age: int, *, level: str | None = None) -> bool:
        """Whether the user logged in (or re-authenticated) within ``max_age`` seconds,
        at ``level`` if one is asked for."""
        auth_at = self.auth_at
        if auth_at is None or self.user_id is None or self._now - auth_at >= max_age:
            return False
        return level is None or self.auth_level == level

    def require_recent_auth(self, max_age: int, *, level: str | None = None) -> None:
        """Guard a sensitive action ("sudo mode"): raise
        :class:`~sessionware.ReauthenticationRequired` unless the user authenticated
        within ``max_age`` seconds (at ``level``, if given). Uncaught, it becomes a 401."""
        if not self.recently_authenticated(max_age, level=level):
            raise ReauthenticationRequired(max_age, level)

    def log_out(self, *, clear_site_data: bool | None = None) -> None:
        """End the logged-in session: its record is deleted (and, for cookie sessions with
        a revocation store, its ID revoked), so no copy of the cookie works again. Its
        remember-me token, if any, is deleted too.

        ``clear_site_data=True`` also sends ``Clear-Site-Data: "cookies",
        "storage"`` (the browser then forgets every cookie and all storage of
        the site); None (default) follows the middleware's ``clear_site_data``.

        Unlike :meth:`drop`, writes after ``log_out`` are kept -- in a fresh,
        anonymous session under a new ID -- so a "you are logged out" flash
        survives the redirect. If nothing is written, the cookie is expired.
        """
        self._check_writable()
        if self._action == DROP:
            return
        if self._action != LOG_OUT and self._observed():
            uid = self._current_meta().get("uid")
            if uid is not None:
                self._note("log_out", uid, "log_out")
        if clear_site_data is not None:
            self._clear_site_data = clear_site_data
        dict.clear(self)
        self._accessed = True
        self._dirty = True
        self._meta = {}
        self._lifecycle = (self._now, None)
        self._action = LOG_OUT

    @property
    def action(self) -> str | None:
        """The pending action: ``"renew"``, ``"drop"``, ``"ignore"`` or None."""
        return _ACTION_NAMES[self._action]

    # What the session knows about itself. Reading any of it is reading the
    # session (the response then varies on the cookie), like reading a key.

    @property
    def is_new(self) -> bool:
        """True when the request brought no valid session."""
        self._accessed = True
        return self._origin is None

    @property
    def created_at(self) -> int:
        """Unix seconds the session began."""
        self._accessed = True
        return self._times()[0]

    @property
    def auth_at(self) -> int | None:
        """Unix seconds of the last authentication, or None."""
        self._accessed = True
        return self._times()[1]

    @property
    def device_bound(self) -> bool:
        """Whether this session is bound to its browser's device key (DBSC; see
        :class:`sessionware.DBSC`): this request came with a valid bound cookie."""
        self._accessed = True
        return self._dbsc is not None

    @property
    def user_id(self) -> str | int | None:
        """The user this session is logged in as (see :meth:`log_in`), or None."""
        self._accessed = True
        uid: str | int | None = self._current_meta().get("uid")
        return uid

    @property
    def accessed(self) -> bool:
        """Whether the app read or wrote the session during this request."""
        return self._accessed

    @property
    def last_active(self) -> int:
        """Unix seconds of the activity the idle timeout counts from after this request."""
        self._accessed = True
        origin = self._origin
        engine = self._engine
        if (
            origin is None
            or engine is None
            or engine.expiry_of(origin.meta).touch_due(origin.touched_at, self._now)
        ):
            return self._now
        return origin.touched_at

    @property
    def expires_at(self) -> int | None:
        """Unix seconds at which the session ends if nothing else happens, or None."""
        last_active = self.last_active  # a read of the session, like any other
        if self._engine is None:
            return None
        return self._engine.expiry_of(self._current_meta()).deadline(self._times()[0], last_active)

    def _times(self) -> tuple[int, int | None]:
        """(created_at, auth_at) as they stand, without counting as a read."""
        if self._lifecycle is not None:
            return self._lifecycle
        origin = self._origin
        return (self._now, None) if origin is None else (origin.created_at, origin.auth_at)

    def _current_meta(self) -> dict[str, Any]:
        """The metadata as it stands, not to be changed (see :meth:`_meta_for_update`)."""
        if self._meta is not None:
            return self._meta
        return _NO_META if self._origin is None else self._origin.meta

    def _meta_for_update(self) -> dict[str, Any]:
        """The metadata as a dict this request may change."""
        if self._meta is None:
            self._meta = {} if self._origin is None else dict(self._origin.meta)
        return self._meta

    # -- tracking ----------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._read_only:
            raise SessionError(
                "the session is read-only here (websocket connections cannot send cookies); "
                "change it in an HTTP request instead"
            )

    def _write(self) -> None:
        if self._read_only:
            self._check_writable()
        self._accessed = True
        self._dirty = True

    def __getitem__(self, key: str) -> Any:
        self._accessed = True
        value = dict.__getitem__(self, key)
        if isinstance(value, _CONTAINERS):
            self._dirty = True
        return value

    def get(self, key: str, default: Any = None, /) -> Any:
        self._accessed = True
        value = dict.get(self, key, default)
        if isinstance(value, _CONTAINERS):
            self._dirty = True
        return value

    def __contains__(self, key: object) -> bool:
        self._accessed = True
        return dict.__contains__(self, key)

    def __len__(self) -> int:
        self._accessed = True
        return dict.__len__(self)

    def __iter__(self) -> Iterator[str]:
        self._accessed = True
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._accessed = True
        return dict.__reversed__(self)

    def keys(self) -> Any:
        self._accessed = True
        return dict.keys(self)

    def values(self) -> Any:
        self._accessed = True
        self._dirty = True  # nested values may be edited through the view
        return dict.values(self)

    def items(self) -> Any:
        self._accessed = True
        self._dirty = True
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        """A shallow copy as a plain dict (nested values are shared)."""
        self._accessed = True
        self._dirty = True
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._accessed = True
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._accessed = True
        return dict.__ne__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        self._accessed = True
        return f"Session({dict.__repr__(self)})"

    def __or__(self, other: Any) -> Any:
        self._accessed = True
        self._dirty = True
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        self._accessed = True
        self._dirty = True
        return dict.__ror__(self, other)

    # -- writes ----------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self._write()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._write()
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self._write()
        dict.update(self, other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._write()
        dict.update(self, *args, **kwargs)

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        self._write()
        return dict.setdefault(self, key, default)

    @overload
    def pop(self, key: str, /) -> Any: ...
    @overload
    def pop(self, key: str, default: Any, /) -> Any: ...
    def pop(self, key: str, *default: Any) -> Any:
        self._write()
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._write()
        return dict.popitem(self)

    def clear(self) -> None:
        """Remove all data; on a logged-in session, log out (exactly :meth:`log_out`).

        ``session.clear()`` is how Starlette and Flask apps log out, so on a
        session with a log-in it ends that log-in -- the identity is gone, the
        record deleted (and a cookie session's ID revoked), writes after it go
        to a fresh anonymous session -- rather than leaving the user logged in
        with empty data. On an anonymous session it only removes the data.
        """
        if self._current_meta().get("uid") is not None:
            self.log_out()
            return
        self._clear_data()

    def _clear_data(self) -> None:
        """Remove all data, keeping the session's log-in (for replacing the data whole)."""
        self._write()
        dict.clear(self)
