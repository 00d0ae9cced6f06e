"""Flask: ``flask.session`` *is* a sessionware session.

    from sessionware.flask import Sessionware

    app = Flask(__name__)
    Sessionware(app, secret_key_base=os.environ["SECRET_KEY_BASE"], store=SQLiteStore("s.db"))

    @app.post("/login")
    def login():
        session.log_in(user.id)        # flask.session, with renew/drop/log_in/...
        flash("Welcome!")              # Flask's flash() and get_flashed_messages() work as usual

Cookies written by Flask's own session (``SecureCookieSessionInterface``) are
read once -- with the app's ``SECRET_KEY`` -- and re-issued in sessionware's
format, so switching logs nobody out (``legacy=False`` turns that off).
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from ._arguments import check_options
from ._config import STORE_DOWN_TEXT, build_engine, log_store_failure
from ._cookies import find_cookie
from ._dbsc_adapt import after_close_sync, endpoint_sync, wsgi_request
from ._dbsc_flow import Answer, Runtime
from ._engine import Engine, engine_of
from ._expiry import Expiry
from ._keys import SecretInput
from ._registry import UserSessions
from ._session import NONE, Session
from .csrf import csrf_input, csrf_token
from .errors import (
    ConfigurationError,
    CSRFError,
    MissingDependency,
    SessionLimitReached,
    SessionTooLarge,
    StoreError,
)
from .legacy import LegacyReader, adopt, forget_old, read_old, readers_of, settled
from .stores.cookie import CookieStore
from .wsgi import (
    _CSRFCheck,
    _sync_store,
    close_session,
    extras_closed,
    extras_opened,
    open_session,
    with_session_headers,
)

try:
    import flask
    from flask.globals import request_ctx
    from flask.json.tag import TaggedJSONSerializer
    from flask.sessions import SecureCookieSessionInterface, SessionMixin
    from flask.sessions import SessionInterface as FlaskSessionInterface
    from markupsafe import Markup
    from werkzeug.datastructures import Headers
    from werkzeug.exceptions import ServiceUnavailable
except ImportError as exc:  # pragma: no cover - exercised without Flask installed
    raise MissingDependency("flask", extra="flask") from exc

__all__ = [
    "FlaskSession",
    "SessionInterface",
    "Sessionware",
    "csrf_exempt",
    "current_session",
    "user_sessions",
]

logger = logging.getLogger("sessionware")
V = TypeVar("V", bound=Callable[..., Any])
_OURS = ("e1.", "s1.", "i1.")
_FLASHES = "_flashes"  # where Flask's flash() keeps its messages


class FlaskSession(Session, SessionMixin):
    """A sessionware :class:`~sessionware.Session` with Flask's ``SessionMixin`` attributes."""

    @property
    def accessed(self) -> bool:
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:  # Flask sets it whenever flask.session is touched
        self._accessed = bool(value)

    @property
    def modified(self) -> bool:
        """Whether the data may have changed (sessionware compares it anyway)."""
        return self._dirty

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self._dirty = True

    @property
    def new(self) -> bool:
        return self._origin is None

    @new.setter
    def new(self, value: bool) -> None:  # the mixin's attribute is writable; ours is derived
        pass

    # Flask's flash() keeps (category, message) tuples under "_flashes", messages
    # often Markup; sessions hold JSON, so they are stored as [category, message]
    # lists (plus "html" for Markup) and handed back as Flask's tuples. Other values
    # of the types Flask's tagged JSON holds (tuple, bytes, Markup, UUID, datetime)
    # are stored in its tagged form and handed back as they were set.

    def __getitem__(self, key: str) -> Any:
        return _from_stored(key, Session.__getitem__(self, key))

    def get(self, key: str, default: Any = None, /) -> Any:
        if not dict.__contains__(self, key):
            Session.get(self, key)  # counts as a read
            return default
        return _from_stored(key, Session.get(self, key))

    def __setitem__(self, key: str, value: Any) -> None:
        Session.__setitem__(self, key, _to_stored(key, value))

    def log_in(self, user_id: str | int, *, keep: Iterable[str] = (), **options: Any) -> None:
        """:meth:`sessionware.Session.log_in`; ``session.permanent`` is kept (it says how the
        session lives, not who was there before), as Flask's own session keeps it."""
        if dict.__contains__(self, "_permanent"):
            keep = (*keep, "_permanent")
        Session.log_in(self, user_id, keep=keep, **options)

    def pop(self, key: str, *default: Any) -> Any:
        if not dict.__contains__(self, key) and default:
            return Session.pop(self, key, *default)
        return _from_stored(key, Session.pop(self, key, *default))

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        if not dict.__contains__(self, key):
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
        self._write()


class _Unavailable(FlaskSession):
    """Stands in for the session when the store failed; the request gets a 503."""

    error: StoreError


_TAGS = TaggedJSONSerializer()
_TAG_KEYS = frozenset(_TAGS.tags)
_JSON_SCALARS = (str, int, float, bool, type(None))


def _needs_tag(value: Any) -> bool:
    """Whether ``value`` holds something JSON cannot (or a dict that looks like a tag)."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return False
    if kind is list:
        return any(_needs_tag(item) for item in value)
    if kind is dict:
        return (len(value) == 1 and next(iter(value)) in _TAG_KEYS) or any(
            _needs_tag(item) for item in value.values()
        )
    return True  # tuple, bytes, Markup, UUID, datetime; anything else fails when saved, naming the key


def _has_tag(stored: Any) -> bool:
    kind = type(stored)
    if kind is list:
        return any(_has_tag(item) for item in stored)
    if kind is dict:
        return (len(stored) == 1 and next(iter(stored)) in _TAG_KEYS) or any(
            _has_tag(item) for item in stored.values()
        )
    return False


def _to_stored(key: str, value: Any) -> Any:
    """A value as the session keeps it: itself when it is JSON (so in-place edits are seen), else tagged."""
    if key == _FLASHES:
        return _flashes_to_json(value)
    return _TAGS.tag(value) if _needs_tag(value) else value


def _from_stored(key: str, stored: Any) -> Any:
    if key == _FLASHES:
        return _flashes_from_json(stored)
    if type(stored) in _JSON_SCALARS or not _has_tag(stored):
        return stored
    return _TAGS.loads(json.dumps(stored))  # the public way to untag: only for tagged values


def _flashes_to_json(flashes: Any) -> Any:
    """Flask's ``[(category, message), ...]`` as JSON: ``[category, message]``, plus ``"html"`` for Markup."""
    if not isinstance(flashes, list | tuple):
        return flashes
    stored: list[Any] = []
    for entry in flashes:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            category, message = entry
            if hasattr(message, "__html__"):
                stored.append([category, str(message.__html__()), "html"])
            else:
                stored.append([category, message])
        else:
            stored.append(entry)
    return stored


def _flashes_from_json(stored: Any) -> Any:
    """The stored flashes as Flask's ``get_flashed_messages()`` returns them: tuples, Markup kept."""
    if not isinstance(stored, list):
        return stored
    flashes: list[Any] = []
    for entry in stored:
        if isinstance(entry, list) and len(entry) in (2, 3):
            html = len(entry) == 3 and entry[2] == "html"
            # Markup only for what was Markup when flashed: the flag is in the session's
            # own (authenticated) data, written by _flashes_to_json.
            message = Markup(entry[1]) if html else entry[1]  # noqa: S704
            flashes.append((entry[0], message))
        else:
            flashes.append(entry)
    return flashes


#: The session options a Flask app passes through, as ``SessionMiddleware`` takes them.
_ENGINE_OPTIONS = frozenset(inspect.signature(build_engine).parameters) - {
    "secret_key_base",
    "store",
    "owner",
}
_CSRF_OPTIONS = frozenset(list(inspect.signature(_CSRFCheck).parameters))


#: The config keys the engine is built from (besides ``SECRET_KEY``), read on every request.
_CONFIG_READ = (
    "SECRET_KEY_FALLBACKS",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
    "PERMANENT_SESSION_LIFETIME",
)


class SessionInterface(FlaskSessionInterface):
    """Flask's session interface, backed by sessionware.

    Options are :class:`sessionware.SessionMiddleware`'s, plus:

        legacy: Read cookies Flask's own session wrote (signed with the app's
            ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``) once, and re-issue
            them in sessionware's format. Defaults to ``True``. A reader from
            :mod:`sessionware.legacy` (``FlaskSessionRedis`` for Flask-Session),
            or a list of them, reads those sessions too (Flask's own cookies
            are still read); ``False`` reads nothing.

    Cookie settings left unset come from Flask's config, read as Flask reads
    them, on every request (a change applies to the next one):
    ``SESSION_COOKIE_NAME``, ``SESSION_COOKIE_DOMAIN``, ``SESSION_COOKIE_PATH``
    (else ``APPLICATION_ROOT``), ``SESSION_COOKIE_PARTITIONED``,
    ``SESSION_COOKIE_SECURE`` (``True`` forces ``Secure``; otherwise ``"auto"``)
    and ``SESSION_COOKIE_SAMESITE`` (``"Lax"``, ``"Strict"`` or ``"None"``; an
    unknown value raises; Flask's default, Python's None, gives ``Lax``: the
    attribute is never left out). The cookie is always ``HttpOnly``
    (``SESSION_COOKIE_HTTPONLY=False`` gives a start-up warning).
    ``secret_key_base`` defaults to the app's ``SECRET_KEY`` with
    ``SECRET_KEY_FALLBACKS`` as older keys (they verify, ``SECRET_KEY`` signs and
    encrypts); each must then be 32 bytes or more.

    ``expiry`` defaults to Flask's lifetimes: a permanent session
    (``session.permanent = True``) ends ``PERMANENT_SESSION_LIFETIME`` after it
    began (a log-in begins it anew; there is always an absolute timeout, so
    activity does not extend it), and its cookie gets ``Max-Age`` and
    ``Expires``; any other session keeps the store's default expiry (AAL2: 30
    minutes idle, 12 hours at most), or ``PERMANENT_SESSION_LIFETIME`` where
    that is shorter. The record says which it is, so listings, the session
    limit and the store's TTL follow it too. Given, ``expiry`` applies to every
    session. With ``SESSION_REFRESH_EACH_REQUEST`` (Flask's default), a
    permanent session's cookie is sent again on every request that sets no
    other, with a fresh ``Max-Age`` (the store is not written); as with every
    ``Set-Cookie``, the response is then ``Cache-Control: no-store``.
    """

    session_class = FlaskSession

    def __init__(
        self,
        *,
        secret_key_base: SecretInput | None = None,
        store: Any = None,
        legacy: bool | LegacyReader | Sequence[LegacyReader] = True,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        check_options("Sessionware", options, _ENGINE_OPTIONS)
        self.secret_key_base = secret_key_base
        self.store = store
        self.legacy = legacy is not False
        self._readers = readers_of(None if isinstance(legacy, bool) else legacy, "Sessionware")
        self.clock = clock
        self.options = options
        #: Without ``expiry``, PERMANENT_SESSION_LIFETIME is the lifetime of permanent sessions,
        #: and the others keep the store's default expiry (see _build).
        self._flask_lifetime = "expiry" not in options
        self._engines: dict[int, tuple[tuple[Any, ...], Engine]] = {}

    def check(self, app: flask.Flask) -> None:
        """Raise now, at start-up, the ConfigurationError ``app``'s first request would raise.

        The engine itself is still built on the first request, from the app's
        config as it is then.
        """
        if app.config.get("SESSION_COOKIE_HTTPONLY", True) is False:
            logger.warning(
                "Sessionware: SESSION_COOKIE_HTTPONLY=False is not followed: the session cookie is always "
                "HttpOnly, so that a script injected into a page cannot read it"
            )
        secret = self._secret(app)
        self._build(app, secret if secret is not None else secrets.token_urlsafe(48))

    def _secret(self, app: flask.Flask) -> SecretInput | None:
        """``secret_key_base``, or else ``SECRET_KEY`` with ``SECRET_KEY_FALLBACKS`` as rotated keys."""
        if self.secret_key_base is not None:
            return self.secret_key_base
        if app.secret_key is None:
            return None
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
        return [app.secret_key, *fallbacks] if fallbacks else app.secret_key

    def engine(self, app: flask.Flask) -> Engine:
        """The engine for ``app``, built from the options and the app's config, rebuilt when that changes.

        The config is read as Flask reads it, on every request: a change of
        ``SESSION_COOKIE_*``, ``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS`` takes
        effect on the next request.
        """
        config = app.config
        seen = (app.secret_key, *(config.get(name) for name in _CONFIG_READ))
        cached = self._engines.get(id(app))
        if cached is not None and cached[0] == seen:
            return cached[1]
        secret = self._secret(app)
        if secret is None:
            raise ConfigurationError(
                "sessionware's Flask SessionInterface needs secret_key_base or SECRET_KEY"
            )
        engine = self._build(app, secret)
        if cached is None:
            # Forget it with the app, so an app created later at the same address
            # (app factories in test suites) gets an engine of its own.
            weakref.finalize(app, self._engines.pop, id(app), None)
        self._engines[id(app)] = (seen, engine)
        return engine

    def _build(self, app: flask.Flask, secret: SecretInput) -> Engine:
        config = app.config
        options = {
            "cookie_name": config.get("SESSION_COOKIE_NAME") or "session",
            "domain": config.get("SESSION_COOKIE_DOMAIN") or None,
            "path": config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
            "secure": True if config.get("SESSION_COOKIE_SECURE") else "auto",
            "same_site": config.get("SESSION_COOKIE_SAMESITE") or "lax",
            "partitioned": bool(config.get("SESSION_COOKIE_PARTITIONED", False)),
            **self.options,
        }
        lifetime = _lifetime(config.get("PERMANENT_SESSION_LIFETIME")) if self._flask_lifetime else None
        engine = build_engine(secret_key_base=secret, store=self.store, owner="Sessionware", **options)
        engine.session_class = FlaskSession
        if lifetime is not None:
            engine.cookie.expires = True  # a persistent cookie says until when, as Flask's does
            # Permanent sessions (marked "p" in their record, see _mark_permanent) end
            # PERMANENT_SESSION_LIFETIME after they began; the others keep the store's
            # default (AAL2), or end sooner if the lifetime is shorter.
            permanent = Expiry(idle_timeout=None, absolute_timeout=lifetime)
            if engine.cookie.persistent:  # persistent=True: every session is permanent
                engine.expiry = permanent
            else:
                engine.expiry = _bounded(engine.expiry, lifetime)
                engine.persistent_expiry = permanent
        return engine

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, (_Unavailable, self.null_session_class))

    def open_session(self, app: flask.Flask, request: flask.Request) -> FlaskSession:
        engine = self.engine(app)
        now = int(self.clock())
        environ = request.environ
        # WSGI servers join repeated Cookie headers into one HTTP_COOKIE.
        header = environ.get("HTTP_COOKIE") or None
        try:
            https = environ.get("wsgi.url_scheme") == "https"
            session = open_session(engine, header, now, https)
            session._scope = environ
            if session._had_cookie and self.legacy:
                assert header is not None
                # A cookie of the session's name came and was refused: perhaps one Flask's own session wrote.
                self._import_legacy(app, engine, header, session)
            if self._readers and session._origin is None and header and not session._dirty:
                found = read_old(self._readers, header, now)
                if found is not None:
                    adopt(session, found, engine.cookie.name_for(https), convert=dict)
            session._accessed = False
        except StoreError as exc:
            log_store_failure(exc)
            unavailable = _Unavailable.__new__(_Unavailable)
            unavailable.error = exc
            return unavailable
        if engine.extras:  # the anomaly hook, remember-me
            try:
                extras_opened(engine, session, header, now, https)
            except StoreError as exc:
                log_store_failure(exc)
                unavailable = _Unavailable.__new__(_Unavailable)
                unavailable.error = exc
                return unavailable
        return session  # type: ignore[return-value]

    def _import_legacy(self, app: flask.Flask, engine: Engine, header: str, session: Session) -> None:
        value, count = find_cookie(header, engine.cookie.name, engine.cookie.name + "=")
        if value is None or count != 1 or value.startswith(_OURS):
            return
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        if serializer is None:
            return
        try:
            data = serializer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except Exception:  # any bad signature or payload: not a session we can trust
            logger.debug("sessionware could not read a legacy Flask session cookie")
            return
        if isinstance(data, dict) and data:
            # Written in sessionware's format on this response; tuples, bytes, Markup (pending
            # flashes' too), UUIDs and datetimes keep their types, as Flask's tagged JSON.
            session.update(data)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        if type(session) is not FlaskSession and (
            isinstance(session, _Unavailable) or not isinstance(session, Session)
        ):
            return
        engine = engine_of(session) if session._engine is not None else self.engine(app)
        environ = session._scope
        https = environ is not None and environ.get("wsgi.url_scheme") == "https"
        permanent = bool(dict.get(session, "_permanent"))  # session.permanent, read without an access
        if permanent:
            session._persistent = True  # Flask's "remember me": a cookie that outlives the browser
        if engine.persistent_expiry is not None:
            _mark_permanent(session, permanent)
        if response.status_code >= 500 and session._store_error is not None:
            # A view's user_sessions() call failed and Flask made a 500 of it: the 503 instead.
            log_store_failure(session._store_error)
            _replace(response, 503, STORE_DOWN_TEXT)
            return
        try:
            set_cookie = close_session(engine, session, response.status_code, session._now, https)
        except StoreError as exc:
            log_store_failure(exc)
            _replace(response, 503, STORE_DOWN_TEXT)
            return
        except SessionLimitReached as exc:
            _replace(response, exc.status_code, str(exc))
            if engine.extras:
                extras_closed(engine, session, None, environ or {}, session._now, https, saved=False)
            return
        accessed = session._accessed
        if set_cookie is None and app.config.get("SESSION_REFRESH_EACH_REQUEST"):
            set_cookie = _refreshed(engine, session, environ, https)
            accessed = accessed or set_cookie is not None  # as Flask: a cookie set comes with Vary: Cookie
        if set_cookie is not None or accessed:
            _add_session_headers(response.headers, set_cookie, accessed)
        if engine.extras:  # remember-me's cookies, Clear-Site-Data; the events
            try:
                added = extras_closed(engine, session, set_cookie, environ or {}, session._now, https)
            except StoreError as exc:
                log_store_failure(exc)
                _replace(response, 503, STORE_DOWN_TEXT)
                return
            for name, value in added:
                response.headers.add(name, value)
        if engine.dbsc is not None:
            root = environ.get("SCRIPT_NAME", "") if environ is not None else ""
            try:
                extra = after_close_sync(engine, session, set_cookie, root, https, session._now)
            except StoreError as exc:
                log_store_failure(exc)
                _replace(response, 503, STORE_DOWN_TEXT)
                return
            for name, value in extra:
                response.headers.add(name, value)
        if (session._also_set or session._legacy is not None) and settled(session, response.status_code):
            # Saved (or logged out): the old library's cookie of another name is expired, its record deleted.
            for cookie in session._also_set:
                response.headers.add("Set-Cookie", cookie)
            forget_old(session)


def _lifetime(lifetime: Any) -> int:
    """PERMANENT_SESSION_LIFETIME (a ``timedelta`` or seconds) in whole seconds."""
    seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else lifetime
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 1:
        raise ConfigurationError(
            "Sessionware expects PERMANENT_SESSION_LIFETIME to be a timedelta or a number of seconds "
            f"of at least 1, got {lifetime!r}; or pass expiry=Expiry(...) to choose the lifetime"
        )
    return int(seconds)


def _bounded(expiry: Expiry, lifetime: int) -> Expiry:
    """``expiry``, with neither timeout longer than ``lifetime`` (Flask bounds every session by it)."""
    idle, absolute = expiry.idle_timeout, expiry.absolute_timeout
    bounded_idle = None if idle is None else min(idle, lifetime)  # no idle timeout stays none
    bounded_absolute = lifetime if absolute is None else min(absolute, lifetime)
    if (bounded_idle, bounded_absolute) == (idle, absolute):
        return expiry
    return Expiry(idle_timeout=bounded_idle, absolute_timeout=bounded_absolute)


def _mark_permanent(session: Session, permanent: bool) -> None:
    """Mark the session's record permanent (``"p"``), or not, so that its expiry is the right one."""
    if bool(session._current_meta().get("p")) != permanent:
        meta = session._meta_for_update()
        if permanent:
            meta["p"] = 1
        else:
            meta.pop("p", None)


def _refreshed(engine: Engine, session: Session, environ: Any, https: bool) -> str | None:
    """SESSION_REFRESH_EACH_REQUEST: the cookie of a permanent session, sent again with a new ``Max-Age``.

    The value is the one the request brought (nothing is written to the
    store), kept by the browser until the session's deadline as it stands
    now; its validity is still the server's.
    """
    if session._origin is None or session._action != NONE or environ is None:
        return None
    if not dict.__len__(session) or not engine.persistent(session):
        return None
    name = engine.cookie.name_for(https)
    value, count = find_cookie(environ.get("HTTP_COOKIE") or "", name, name + "=")
    if value is None or count != 1:
        return None
    try:
        return engine.cookie_for(value, session, session._now, https)
    except SessionTooLarge:  # pragma: no cover - the browser sent it, so it fits
        return None


def _add_session_headers(headers: Headers, set_cookie: str | None, vary: bool) -> None:
    """:func:`sessionware.wsgi.with_session_headers`, applied to a Werkzeug ``Headers`` in place."""
    has_vary = has_cache_control = False
    for name, _ in headers:
        lowered = name.lower()
        if lowered == "vary":
            has_vary = True
        elif lowered == "cache-control":
            has_cache_control = True
    if (vary and has_vary) or (set_cookie is not None and has_cache_control):
        rewritten = with_session_headers(list(headers.items()), set_cookie, vary)
        headers.clear()
        headers.extend(rewritten)
        return
    # The common case: nothing to merge with, so the headers are only appended.
    if vary:
        headers.add("Vary", "Cookie")
    if set_cookie is not None:
        headers.add("Set-Cookie", set_cookie)
        headers.add("Cache-Control", "no-store")


def _replace(response: flask.Response, status: int, text: str) -> None:
    response.status_code = status
    response.set_data((text + "\n").encode())
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Set-Cookie", None)


class Sessionware:
    """The Flask extension: installs :class:`SessionInterface` and answers 503 when the store is down.

    ``Sessionware(app, **options)`` or, with an app factory, ``ext = Sessionware(**options)``
    then ``ext.init_app(app)``. Options are :class:`SessionInterface`'s, plus:

        csrf: ``True`` checks every unsafe request (not GET, HEAD, OPTIONS or
            TRACE) as :class:`sessionware.CSRFMiddleware` does -- the
            ``Sec-Fetch-Site`` / ``Origin`` headers, then the masked token from
            the ``x-csrf-token`` header or the form's ``_csrf_token`` field --
            before the view runs; a refusal raises :class:`~sessionware.CSRFError`,
            answered with a 403 unless the app registers its own handler. A
            mapping of that middleware's options (``trusted_origins``,
            ``trust_same_site``, ``exempt`` paths or a callable taking the WSGI
            environ, ``max_body_size``) does the same with them; a view
            decorated with :func:`csrf_exempt` is never checked. Templates then
            have ``{{ csrf_token() }}`` (a fresh masked token, for a form field
            or a ``<meta>`` read by JavaScript) and ``{{ csrf_input() }}`` (the
            hidden ``<input>``). Defaults to ``False`` (no checks).
    """

    def __init__(
        self, app: flask.Flask | None = None, *, csrf: bool | Mapping[str, Any] = False, **options: Any
    ) -> None:
        self.interface = SessionInterface(**options)
        self.csrf: _CSRFCheck | None = None
        if csrf is not False:
            csrf_options = csrf if isinstance(csrf, Mapping) else {}
            check_options("Sessionware(csrf=...)", csrf_options, _CSRF_OPTIONS)
            self.csrf = _CSRFCheck(**csrf_options)  # bad values raise here
        if app is not None:
            self.init_app(app)

    @classmethod
    def from_flask_session(cls, app: flask.Flask, **options: Any) -> Sessionware:
        """Replace ``flask_session.Session(app)``: Flask-Session's settings, its users' sessions kept.

        Reads the app's Flask-Session configuration and installs sessionware
        with its equivalent; every Flask-Session session still live is read
        once (:class:`sessionware.legacy.FlaskSessionRedis`) and re-issued, so
        nobody is logged out. The mapping (``docs/migration.md``):

        - ``SESSION_TYPE``: ``"redis"`` only (anything else raises
          :class:`~sessionware.ConfigurationError`).
        - ``SESSION_REDIS``: the client the new ``RedisStore`` uses, and the
          reader reads from (default: Redis on localhost, as Flask-Session).
        - ``SESSION_KEY_PREFIX``: the old records' prefix; new records go
          under it plus ``"sw:"``.
        - ``SESSION_USE_SIGNER``: the old IDs are checked with ``SECRET_KEY``.
        - ``SESSION_PERMANENT``: ``persistent`` (a cookie that outlives the browser).
        - ``PERMANENT_SESSION_LIFETIME``: the idle timeout, unless ``expiry`` is given.
        - ``SESSION_COOKIE_*``, ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``: as
          :class:`SessionInterface` reads them.

        Settings with no equivalent are ignored with a start-up warning
        naming them (see :data:`FLASK_SESSION_IGNORED`). ``options`` are
        :class:`Sessionware`'s and win over the mapped ones.
        """
        config = app.config
        kind = config.get("SESSION_TYPE")
        if kind != "redis":
            raise ConfigurationError(
                f"Sessionware.from_flask_session maps SESSION_TYPE='redis' only, got {kind!r}; "
                "for another backend pass a sessionware store to Sessionware(app, store=...)"
            )
        from .legacy import FlaskSessionRedis
        from .stores.redis import RedisStore

        client = config.get("SESSION_REDIS")
        if client is None:
            import redis

            client = redis.Redis()  # Flask-Session's default: localhost
        prefix = config.get("SESSION_KEY_PREFIX", "session:")
        defaults = flask.Flask.default_config
        ignored = sorted(
            name
            for name in FLASK_SESSION_IGNORED
            if name in config and config[name] != defaults.get(name, ...)
        )
        if ignored:
            logger.warning(
                "Sessionware.from_flask_session: these Flask-Session settings have no equivalent and are "
                "ignored (see docs/migration.md): %s",
                ", ".join(ignored),
            )
        mapped: dict[str, Any] = {
            "store": RedisStore(client=client, prefix=prefix + "sw:"),
            "persistent": bool(config.get("SESSION_PERMANENT", True)),
            "legacy": FlaskSessionRedis(
                client,
                key_prefix=prefix,
                use_signer=bool(config.get("SESSION_USE_SIGNER", False)),
                secret_key=app.secret_key,
                cookie_name=config.get("SESSION_COOKIE_NAME") or "session",
            ),
        }
        lifetime = app.permanent_session_lifetime.total_seconds()
        if "expiry" not in options:
            from ._expiry import Expiry

            mapped["expiry"] = Expiry(idle_timeout=int(lifetime), absolute_timeout=None)
        return cls(app, **{**mapped, **options})

    def init_app(self, app: flask.Flask) -> None:
        self.interface.check(app)  # a bad option fails here, not at the first request
        app.session_interface = self.interface
        app.extensions["sessionware"] = self
        store = self.interface.store
        if not (store is None or (isinstance(store, CookieStore) and store.revocation is None)):
            # Opening a session may have asked a store that failed: refuse before the view.
            app.before_request(_refuse_when_unavailable)
        if self.interface.options.get("dbsc") is not None:
            # Before the CSRF check: a browser's DBSC requests carry a proof, not a CSRF token.
            app.before_request(_dbsc_before_request)
        if self.csrf is not None:
            app.before_request(self._check_csrf)
            if CSRFError not in app.error_handler_spec[None][None]:  # the app's own wins
                app.register_error_handler(CSRFError, _csrf_refused)
            # {{ csrf_token() }} and {{ csrf_input() }} in templates, for the current request.
            app.jinja_env.globals.setdefault("csrf_token", lambda: csrf_token(current_session()))
            app.jinja_env.globals.setdefault("csrf_input", lambda: csrf_input(current_session()))

    def _check_csrf(self) -> None:
        checker = self.csrf
        assert checker is not None
        environ = flask.request.environ
        if not checker.applies(environ):
            return
        view = flask.current_app.view_functions.get(flask.request.endpoint or "")
        if getattr(view, "_sessionware_csrf_exempt", False):
            return
        reason = checker.refusal(environ, current_session())
        if reason is not None:
            raise CSRFError(reason)


def _dbsc_before_request() -> flask.Response | None:
    """DBSC's endpoints, and its refusal of a bound session without its bound cookie."""
    session = request_ctx._session
    if not isinstance(session, FlaskSession) or isinstance(session, _Unavailable):
        return None
    engine = engine_of(session)
    dbsc: Runtime | None = engine.dbsc
    assert dbsc is not None
    environ = flask.request.environ
    answer: Answer | None
    path = environ.get("PATH_INFO", "/") or "/"
    try:
        if dbsc.is_endpoint(path):
            https = environ.get("wsgi.url_scheme") == "https"
            answer = endpoint_sync(engine, session, wsgi_request(environ, https), session._now)
        else:
            answer = dbsc.refusal(
                session, path, environ.get("SCRIPT_NAME", ""), environ.get("HTTP_COOKIE"), session._now
            )
    except StoreError as exc:
        log_store_failure(exc)
        session.ignore()
        return flask.Response(STORE_DOWN_TEXT, status=503, mimetype="text/plain")
    if answer is None:
        return None
    session.ignore()  # answered by DBSC: the session is not written
    return flask.Response(answer.body, status=answer.status, headers=answer.headers)


#: Flask-Session settings :meth:`Sessionware.from_flask_session` has no equivalent for, and why.
FLASK_SESSION_IGNORED = {
    "SESSION_ID_LENGTH": "session IDs are always 256 random bits, signed",
    "SESSION_SERIALIZATION_FORMAT": "sessions are JSON; old records are read in either format",
    "SESSION_CLEANUP_N_REQUESTS": "Redis expires records itself",
    "SESSION_COOKIE_HTTPONLY": "the cookie is always HttpOnly",
}


def csrf_exempt(view: V) -> V:
    """Mark a Flask view as never CSRF-checked by ``Sessionware(app, csrf=...)`` (webhooks...)."""
    view._sessionware_csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _csrf_refused(error: CSRFError) -> flask.Response:
    return flask.Response(str(error), status=403, mimetype="text/plain")


def _refuse_when_unavailable() -> None:
    if isinstance(request_ctx._session, _Unavailable):
        raise ServiceUnavailable(STORE_DOWN_TEXT.removeprefix("Service Unavailable: ").strip())


def current_session() -> FlaskSession:
    """``flask.session``, typed as the sessionware session it is (``log_in``, ``renew``...)."""
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(session, FlaskSession):
        raise ConfigurationError(
            "flask.session is not a sessionware session: call Sessionware(app, ...) first"
        )
    return session


def user_sessions() -> UserSessions:
    """List and revoke sessions of any user, through the current request's store."""
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    engine = engine_of(session)
    users = UserSessions(engine, _sync_store(engine), clock=lambda: session._now)
    users.request_session = session
    return users
