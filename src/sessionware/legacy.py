"""Readers of other libraries' live sessions, so that switching to sessionware logs nobody out.

Pass one or more readers as ``legacy=`` to :class:`sessionware.SessionMiddleware`,
:class:`sessionware.wsgi.SessionMiddleware` or :class:`sessionware.flask.Sessionware`::

    from sessionware.legacy import DjangoDB

    app = SessionMiddleware(
        app, secret_key_base=secret, store=store,
        legacy=DjangoDB("postgresql://localhost/app", secret_key=os.environ["DJANGO_SECRET_KEY"]),
    )

A request that brings no valid sessionware cookie but a cookie a reader knows
(its ``cookie_name``) has that cookie read once: the reader checks it and
loads the old session, read-only, from the old store (one extra store read,
on that request only). The data becomes the new sessionware session, written
on that response in sessionware's format; when the old data names a
logged-in user the documented way (Django's ``_auth_user_id``, Flask-Login's
``_user_id``: each reader's ``user_key``) the new session is *logged in* as
that user (:meth:`~sessionware.Session.log_in`: new ID, registry entry).
Afterwards the browser sends the sessionware cookie and no reader is asked
again. A reader's old cookie of another name than sessionware's is expired on
that response; the old record is deleted once the new session is saved
(``delete=True``, default: a response that fails loses nothing) or left for
a roll-back (``delete=False``).

Nothing is ever unpickled: a pickled record (older Flask-Session, Django's
``PickleSerializer``) is refused; the pickle Django's cache layer wraps a
session dict in is read as plain data, never run (:class:`DjangoCache`).
A bad signature, an unknown ID, an expired or undecodable record, another
app's value (wrong secret, wrong prefix): the user starts anonymous and one
debug line on the ``"sessionware"`` logger says why. If the old store itself fails, the request fails closed
(:class:`~sessionware.StoreUnavailable`, a 503), as for sessionware's own store.

Turn a reader off once the old library's longest session lifetime since the
switch has passed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ._cookies import find_cookie
from ._django_signing import Refused, django_loads
from ._pickle_data import NotPlainData, plain_data
from ._session import IGNORE, Session
from .errors import ConfigurationError, MissingDependency, StoreUnavailable

__all__ = [
    "DjangoCache",
    "DjangoDB",
    "DjangoSignedCookies",
    "FlaskSessionRedis",
    "LegacyReader",
    "StarsessionsCookie",
    "StarsessionsRedis",
]

logger = logging.getLogger("sessionware")

_OURS = ("e1.", "s1.", "i1.")  # sessionware's own cookie formats: never a legacy value
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{1,256}")
_DJANGO_KEY = re.compile(r"[a-z0-9]{8,64}")
_DJANGO_COOKIE_AGE = 14 * 24 * 60 * 60


@runtime_checkable
class LegacyReader(Protocol):
    """**Protocol**: what ``legacy=`` takes; every reader in this module is one.

    ``read(value, now)`` gets the value of the cookie named ``cookie_name``
    and returns the old session's data, or None (logging why at debug
    level); it raises :class:`~sessionware.StoreError` only when the old
    store fails. ``blocking`` says whether ``read`` does I/O (the ASGI
    middleware then runs it in a thread). ``user_key`` names the data key
    holding the logged-in user's ID, or is None.

    A reader may also have ``forget(value)``, which deletes the old record:
    it is called once the session read from it has been saved in
    sessionware's store, so a response that fails (a 500) loses nothing and
    the next request reads the old session again. A failing ``forget`` is
    logged; the new session stands.
    """

    cookie_name: str
    user_key: str | None
    blocking: bool

    def read(self, value: str, now: int) -> dict[str, Any] | None: ...


def _redis_client(redis: Any, owner: str) -> Any:
    if isinstance(redis, str):
        try:
            import redis as redis_py
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependency("redis", extra="redis") from exc
        return redis_py.Redis.from_url(redis)
    if not (callable(getattr(redis, "get", None)) and callable(getattr(redis, "delete", None))):
        raise ConfigurationError(f"{owner} expects redis to be a redis.Redis client or a redis:// URL")
    return redis


def _refused(owner: str, reason: str) -> None:
    logger.debug("sessionware: %s did not read the old session cookie: %s", owner, reason)


def _fetch(owner: str, call: Callable[[], Any]) -> Any:
    """A call to the old store; its failure fails the request closed, as sessionware's own store's does."""
    try:
        return call()
    except Exception as exc:
        raise StoreUnavailable(f"{owner}: the old session store failed: {type(exc).__name__}: {exc}") from exc


def _json_object(owner: str, raw: bytes) -> dict[str, Any] | None:
    if raw[:1] == b"\x80":
        _refused(owner, "a pickled record: pickle is never unpickled")
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        _refused(owner, "a record that is not JSON")
        return None
    if not isinstance(data, dict):
        _refused(owner, "a record that is not a JSON object")
        return None
    return data


class _RedisReader:
    """What the Redis readers share: a client, a key prefix, ``delete``."""

    owner = "legacy reader"
    blocking = True
    #: What the record IDs in this library's cookies look like, and what to call them.
    id_pattern = _TOKEN
    id_name = "session ID"

    def __init__(self, redis: Any, prefix: str, cookie_name: str, delete: bool, user_key: str | None) -> None:
        self.redis = _redis_client(redis, self.owner)
        self.prefix = prefix
        self.cookie_name = cookie_name
        self.delete = delete
        self.user_key = user_key

    def _load(self, sid: str) -> bytes | None:
        key = self.prefix + sid
        raw = _fetch(self.owner, lambda: self.redis.get(key))
        if raw is None:
            _refused(self.owner, "no record under that ID (expired, or another app's)")
            return None
        return bytes(raw) if not isinstance(raw, bytes) else raw

    def _sid(self, value: str) -> str | None:
        """The record's ID in a cookie value, or None (logged) for one not of this reader."""
        if not self.id_pattern.fullmatch(value):
            _refused(self.owner, f"not a {self.id_name}")
            return None
        return value

    def _record(self, value: str) -> bytes | None:
        """The raw record a cookie value names, or None (logged)."""
        sid = self._sid(value)
        return None if sid is None else self._load(sid)

    def forget(self, value: str) -> None:
        """Delete the record ``read(value)`` read (with ``delete=True``, the default)."""
        sid = self._sid(value) if self.delete else None
        if sid is not None:
            self.redis.delete(self.prefix + sid)


class FlaskSessionRedis(_RedisReader):
    """Flask-Session 0.8's Redis sessions (``SESSION_TYPE = "redis"``).

    The cookie holds the session ID (signed, with ``SESSION_USE_SIGNER``);
    the record is ``SESSION_KEY_PREFIX + ID`` in Redis, msgpack (the default
    ``SESSION_SERIALIZATION_FORMAT``, read with ``msgspec``: ``pip install
    'sessionware[flask-session]'``) or JSON. A record older Flask-Session
    wrote with pickle is refused. Flask-Login's ``_user_id`` logs the new
    session in as that user.

    Options:
        redis: The ``SESSION_REDIS`` client (a ``redis.Redis``), or a
            ``redis://`` URL. Required.
        key_prefix: ``SESSION_KEY_PREFIX``. Defaults to ``"session:"``.
        use_signer: ``SESSION_USE_SIGNER``: the cookie is the ID signed with
            ``secret_key``. Defaults to ``False``.
        secret_key: The app's ``SECRET_KEY``; required with ``use_signer``.
        cookie_name: ``SESSION_COOKIE_NAME``. Defaults to ``"session"``.
        delete: Delete the old record once the session read from it is saved.
            Defaults to ``True``.
        user_key: The key naming the logged-in user. Defaults to ``"_user_id"``
            (Flask-Login); None logs nobody in.

    Example::

        Sessionware(app, secret_key_base=secret, store=RedisStore(url),
                    legacy=FlaskSessionRedis(redis.Redis()))
    """

    owner = "FlaskSessionRedis"
    id_name = "Flask-Session ID"

    def __init__(
        self,
        redis: Any,
        *,
        key_prefix: str = "session:",
        use_signer: bool = False,
        secret_key: str | bytes | None = None,
        cookie_name: str = "session",
        delete: bool = True,
        user_key: str | None = "_user_id",
    ) -> None:
        super().__init__(redis, key_prefix, cookie_name, delete, user_key)
        try:
            import msgspec
        except ImportError as exc:
            raise MissingDependency("msgspec", extra="flask-session") from exc
        self._msgpack = msgspec.msgpack.Decoder()
        self._decode_error: type[Exception] = msgspec.DecodeError
        self._signer: Any = None
        if use_signer:
            if not secret_key:
                raise ConfigurationError("FlaskSessionRedis expects secret_key when use_signer=True")
            import itsdangerous

            self._signer = itsdangerous.Signer(secret_key, salt="flask-session", key_derivation="hmac")
            self._bad_signature: type[Exception] = itsdangerous.BadSignature

    def _sid(self, value: str) -> str | None:
        if self._signer is None:
            return super()._sid(value)
        try:
            sid = self._signer.unsign(value).decode()
        except (self._bad_signature, UnicodeDecodeError):
            _refused(self.owner, "a bad signature (another app's, or another SECRET_KEY)")
            return None
        return super()._sid(sid)

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        raw = self._record(value)
        if raw is None:
            return None
        if raw[:1] in (b"{", b" "):
            return _json_object(self.owner, raw)
        if raw[:1] == b"\x80":  # also an empty msgpack map; Flask-Session never writes one alone
            _refused(self.owner, "a pickled record (Flask-Session before 0.7): pickle is never unpickled")
            return None
        try:
            data = self._msgpack.decode(raw)
        except self._decode_error:
            _refused(self.owner, "a record that is neither msgpack nor JSON")
            return None
        if not isinstance(data, dict):
            _refused(self.owner, "a record that is not a mapping")
            return None
        return data


class StarsessionsRedis(_RedisReader):
    """starsessions' ``RedisStore`` with its ``JsonSerializer``.

    The cookie holds the session ID; the record is ``prefix + ID``, JSON,
    with starsessions' ``__metadata__`` (dropped).

    Options:
        redis: A synchronous ``redis.Redis`` client on the same server as the
            ``RedisStore``'s connection, or a ``redis://`` URL. Required.
        prefix: The ``RedisStore``'s string ``prefix``. Defaults to
            ``"starsessions."``.
        cookie_name: ``SessionMiddleware``'s ``cookie_name``. Defaults to ``"session"``.
        delete: Delete the old record once the session read from it is saved.
            Defaults to ``True``.
        user_key: The key naming the logged-in user, if the app had one.
            Defaults to None (starsessions has no convention).

    Example::

        SessionMiddleware(app, secret_key_base=secret, legacy=StarsessionsRedis("redis://localhost"))
    """

    owner = "StarsessionsRedis"
    id_name = "starsessions ID"

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "starsessions.",
        cookie_name: str = "session",
        delete: bool = True,
        user_key: str | None = None,
    ) -> None:
        super().__init__(redis, prefix, cookie_name, delete, user_key)

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        raw = self._record(value)
        data = None if raw is None else _json_object(self.owner, raw)
        if data is not None:
            data.pop("__metadata__", None)
        return data


class StarsessionsCookie:
    """starsessions' ``CookieStore``: the data itself in the cookie, signed by itsdangerous.

    Options:
        secret_key: The ``CookieStore``'s ``secret_key``. Required.
        lifetime: ``SessionMiddleware``'s ``lifetime`` in seconds; older
            cookies are refused. Defaults to 0 (session-only cookies, checked
            against one year, as starsessions does).
        cookie_name: Defaults to ``"session"``.
        user_key: As for :class:`StarsessionsRedis`. Defaults to None.

    Example::

        SessionMiddleware(app, secret_key_base=secret, legacy=StarsessionsCookie(secret_key=old_key))
    """

    owner = "StarsessionsCookie"
    blocking = False

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        lifetime: int = 0,
        cookie_name: str = "session",
        user_key: str | None = None,
    ) -> None:
        try:
            import itsdangerous
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependency("itsdangerous", extra="starlette") from exc
        self._signer = itsdangerous.TimestampSigner(
            str(secret_key) if not isinstance(secret_key, bytes) else secret_key
        )
        self._bad = itsdangerous.BadSignature
        self.lifetime = lifetime if lifetime > 0 else 3600 * 24 * 30 * 12
        self.cookie_name = cookie_name
        self.user_key = user_key

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        try:
            payload = self._signer.unsign(value, max_age=self.lifetime)
            raw = base64.b64decode(payload)
        except (self._bad, binascii.Error, ValueError):
            _refused(self.owner, "a bad or expired signature (another app's, or another secret)")
            return None
        data = _json_object(self.owner, raw)
        if data is not None:
            data.pop("__metadata__", None)
        return data


class DjangoSignedCookies:
    """Django's ``signed_cookies`` session backend (``JSONSerializer``).

    Read without Django installed: ``django.core.signing`` is reimplemented
    for reading. Pickled sessions (``PickleSerializer``, gone in Django 5.0)
    are refused.

    Options:
        secret_key: Django's ``SECRET_KEY``. Required.
        fallback_keys: ``SECRET_KEY_FALLBACKS``. Defaults to none.
        max_age: ``SESSION_COOKIE_AGE``: older cookies are refused. Defaults to two weeks.
        cookie_name: ``SESSION_COOKIE_NAME``. Defaults to ``"sessionid"``.
        user_key: Defaults to ``"_auth_user_id"`` (``django.contrib.auth``).

    Example::

        SessionMiddleware(app, secret_key_base=secret,
                          legacy=DjangoSignedCookies(secret_key=os.environ["DJANGO_SECRET_KEY"]))
    """

    owner = "DjangoSignedCookies"
    blocking = False
    salt = "django.contrib.sessions.backends.signed_cookies"

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        fallback_keys: Iterable[str | bytes] = (),
        max_age: int = _DJANGO_COOKIE_AGE,
        cookie_name: str = "sessionid",
        user_key: str | None = "_auth_user_id",
    ) -> None:
        self.secrets = _django_secrets(self.owner, secret_key, fallback_keys)
        self.max_age = max_age
        self.cookie_name = cookie_name
        self.user_key = user_key

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        return _django_session(self.owner, value, self.secrets, self.salt, self.max_age, now)


class DjangoCache(_RedisReader):
    """Django's ``cache`` session backend on Redis (Django's ``RedisCache``, or django-redis).

    The cookie holds the session key; the record is the cache entry
    ``"<KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache<key>"`` (Django's
    default ``KEY_FUNCTION``), whose TTL is the session's expiry. Django's
    cache layer pickles the session dict it stores, whatever
    ``SESSION_SERIALIZER`` says; sessionware never unpickles: the pickle's
    opcodes are read as data (``sessionware._pickle_data``), and one that
    holds anything but plain data -- a datetime, a model instance, bytes, any
    global or call -- is refused with a debug line naming it, and the user
    starts anonymous. Read without Django installed. (``cached_db`` also
    writes every session to the database: :class:`DjangoDB` reads it there,
    or this reader with ``session_prefix="django.contrib.sessions.cached_db"``.)

    Options:
        redis: A ``redis.Redis`` client on the cache's Redis (its first
            ``LOCATION``, which Django writes to), or a ``redis://`` URL with
            the same database number. Required.
        key_prefix: The cache's ``KEY_PREFIX``. Defaults to ``""``.
        version: The cache's ``VERSION``. Defaults to 1.
        session_prefix: What Django's backend puts before the session key.
            Defaults to ``"django.contrib.sessions.cache"``.
        cookie_name: ``SESSION_COOKIE_NAME``. Defaults to ``"sessionid"``.
        delete: Delete the old entry once the session read from it is saved.
            Defaults to ``True``.
        user_key: Defaults to ``"_auth_user_id"`` (``django.contrib.auth``).

    Compressed entries (django-redis's ``COMPRESSOR``) are not read.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=store,
                          legacy=DjangoCache("redis://localhost:6379/1"))
    """

    owner = "DjangoCache"
    id_pattern = _DJANGO_KEY
    id_name = "Django session key"

    def __init__(
        self,
        redis: Any,
        *,
        key_prefix: str = "",
        version: int = 1,
        session_prefix: str = "django.contrib.sessions.cache",
        cookie_name: str = "sessionid",
        delete: bool = True,
        user_key: str | None = "_auth_user_id",
    ) -> None:
        if type(version) is not int:
            raise ConfigurationError(
                f"DjangoCache expects version to be the cache's VERSION, an int, got {version!r}"
            )
        super().__init__(redis, f"{key_prefix}:{version}:{session_prefix}", cookie_name, delete, user_key)

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        raw = self._record(value)
        if raw is None:
            return None
        try:
            data = plain_data(raw)
        except NotPlainData as exc:
            _refused(self.owner, f"a pickle that is not plain data, never unpickled: {exc}")
            return None
        if not isinstance(data, dict):
            _refused(self.owner, "a record that is not a session dict")
            return None
        return data


class DjangoDB:
    """Django's ``db`` session backend, and ``cached_db`` (which writes every session to the database too).

    The cookie holds the session key; the row is in ``django_session``
    (``session_data`` signed with ``SECRET_KEY``, JSON; ``expire_date``
    checked). Read without Django installed. For Django's plain ``cache``
    backend, see :class:`DjangoCache`.

    Options:
        database: ``"sqlite:///path/to/db.sqlite3"``, a ``postgresql://`` URL
            (needs ``sessionware[postgres]``), or a function returning a new
            DB-API connection (``qmark`` or ``format`` parameters), opened
            for each read and closed after it. Required.
        secret_key: Django's ``SECRET_KEY``. Required.
        fallback_keys: ``SECRET_KEY_FALLBACKS``. Defaults to none.
        cookie_name: ``SESSION_COOKIE_NAME``. Defaults to ``"sessionid"``.
        table: Defaults to ``"django_session"``.
        naive_timezone: The zone of a naive ``expire_date`` (SQLite's, or
            PostgreSQL with ``USE_TZ = False``): Django stores UTC when
            ``USE_TZ = True`` (the default) and ``TIME_ZONE`` otherwise.
            Defaults to UTC.
        delete: Delete the old row once the session read from it is saved.
            Defaults to ``True``.
        user_key: Defaults to ``"_auth_user_id"`` (``django.contrib.auth``).

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=store,
                          legacy=DjangoDB("sqlite:///db.sqlite3", secret_key=old_secret))
    """

    owner = "DjangoDB"
    blocking = True
    salt = "django.contrib.sessions.SessionStore"

    def __init__(
        self,
        database: str | Callable[[], Any],
        *,
        secret_key: str | bytes,
        fallback_keys: Iterable[str | bytes] = (),
        cookie_name: str = "sessionid",
        table: str = "django_session",
        naive_timezone: datetime.tzinfo = datetime.UTC,
        delete: bool = True,
        user_key: str | None = "_auth_user_id",
    ) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", table):
            raise ConfigurationError(f"DjangoDB expects table to be a table name, got {table!r}")
        self.secrets = _django_secrets(self.owner, secret_key, fallback_keys)
        self._connect, marker = _connector(database)
        self._select = f"SELECT session_data, expire_date FROM {table} WHERE session_key = {marker}"  # noqa: S608
        self._delete = f"DELETE FROM {table} WHERE session_key = {marker}"  # noqa: S608
        self.cookie_name = cookie_name
        self.naive_timezone = naive_timezone
        self.delete = delete
        self.user_key = user_key

    def _run(self, sql: str, key: str) -> Any:
        # A connection per read: a legacy read happens once per user, and nothing stays open.
        connection = self._connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, (key,))
            row = cursor.fetchone() if cursor.description is not None else None
            connection.commit()
            return row
        finally:
            connection.close()

    def read(self, value: str, now: int) -> dict[str, Any] | None:
        if not _DJANGO_KEY.fullmatch(value):
            _refused(self.owner, "not a Django session key")
            return None
        row = _fetch(self.owner, lambda: self._run(self._select, value))
        if row is None:
            _refused(self.owner, "no row under that key (expired and purged, or another app's)")
            return None
        session_data, expire_date = row
        if _timestamp(expire_date, self.naive_timezone) <= now:
            _refused(self.owner, "an expired session")
            return None
        return _django_session(self.owner, str(session_data), self.secrets, self.salt, None, now)

    def forget(self, value: str) -> None:
        """Delete the row ``read(value)`` read (with ``delete=True``, the default)."""
        if self.delete and _DJANGO_KEY.fullmatch(value):
            self._run(self._delete, value)


def _django_session(
    owner: str, signed: str, secrets: Sequence[str | bytes], salt: str, max_age: int | None, now: int
) -> dict[str, Any] | None:
    """A session Django's ``signing.dumps`` made, or None (logged)."""
    try:
        data = django_loads(signed, secrets=secrets, salt=salt, max_age=max_age, now=now)
    except Refused as exc:
        _refused(owner, str(exc))
        return None
    if not isinstance(data, dict):
        _refused(owner, "a session that is not a JSON object")
        return None
    return data


def _django_secrets(
    owner: str, secret_key: str | bytes, fallbacks: Iterable[str | bytes]
) -> list[str | bytes]:
    if not secret_key:
        raise ConfigurationError(f"{owner} expects secret_key to be Django's SECRET_KEY")
    return [secret_key, *fallbacks]


def _timestamp(value: Any, zone: datetime.tzinfo) -> float:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if not isinstance(value, datetime.datetime):
        return 0.0  # not a date: treated as expired
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return float(value.timestamp())


def _connector(database: str | Callable[[], Any]) -> tuple[Callable[[], Any], str]:
    """A connection factory and its parameter marker."""
    if callable(database):
        import sqlite3

        probe = database()
        marker = "?" if isinstance(probe, sqlite3.Connection) else "%s"
        probe.close()
        return database, marker
    if database.startswith("sqlite:///"):
        import sqlite3

        path = database.removeprefix("sqlite:///")
        return lambda: sqlite3.connect(path, timeout=5.0), "?"
    if database.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependency("psycopg", extra="postgres") from exc
        return lambda: psycopg.connect(database, connect_timeout=5), "%s"
    raise ConfigurationError(
        "DjangoDB expects database to be a sqlite:/// or postgresql:// URL or a connection factory, "
        f"got {database!r}"
    )


# -- what the adapters call ----------------------------------------------------


def readers_of(legacy: LegacyReader | Sequence[LegacyReader] | None, owner: str) -> tuple[LegacyReader, ...]:
    """``legacy=`` as a tuple of readers; anything else is a ConfigurationError."""
    if legacy is None:
        return ()
    readers = (legacy,) if isinstance(legacy, LegacyReader) else tuple(legacy)
    for reader in readers:
        if not isinstance(reader, LegacyReader):
            raise ConfigurationError(
                f"{owner} expects legacy to be a reader from sessionware.legacy or a list of them, "
                f"got {reader!r}"
            )
    return readers


class Found(NamedTuple):
    """An old session a reader read: the reader, the data, the cookie value it came from."""

    reader: LegacyReader
    data: dict[str, Any]
    value: str


def find_legacy(readers: Sequence[LegacyReader], header: str) -> list[tuple[LegacyReader, str]]:
    """The readers whose cookie this ``Cookie`` header carries (once, not in sessionware's format)."""
    found = []
    for reader in readers:
        value, count = find_cookie(header, reader.cookie_name)
        if value and count == 1 and not value.startswith(_OURS):
            found.append((reader, value))
    return found


def read_old(readers: Sequence[LegacyReader], header: str, now: int) -> Found | None:
    """The first old session the readers find in this ``Cookie`` header, read synchronously (WSGI, Flask)."""
    return _read(find_legacy(readers, header), now)


def read_old_key(readers: Sequence[LegacyReader], value: str, now: int) -> Found | None:
    """The first old session the readers find for a cookie value itself (Django's session key)."""
    if value.startswith(_OURS):
        return None
    return _read([(reader, value) for reader in readers], now)


def _read(found: list[tuple[LegacyReader, str]], now: int) -> Found | None:
    """The first of ``found``'s readers that reads its value."""
    for reader, value in found:
        data = reader.read(value, now)
        if data:
            return Found(reader, data, value)
    return None


async def aread_old_key(readers: Sequence[LegacyReader], value: str, now: int) -> Found | None:
    """:func:`read_old_key` for async code: a blocking reader runs in a thread."""
    if value.startswith(_OURS):
        return None
    return await _aread([(reader, value) for reader in readers], now)


async def aread_old(readers: Sequence[LegacyReader], header: str, now: int) -> Found | None:
    """:func:`read_old` for ASGI: a blocking reader runs in a thread."""
    return await _aread(find_legacy(readers, header), now)


async def _aread(found: list[tuple[LegacyReader, str]], now: int) -> Found | None:
    """The first of ``found``'s readers that reads its value; a blocking one in a thread."""
    for reader, value in found:
        data = await _off_loop(reader.read, value, now) if reader.blocking else reader.read(value, now)
        if data:
            return Found(reader, data, value)
    return None


async def _off_loop(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)`` in a worker thread: a blocking reader's I/O, off the event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio through anyio)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(call, *args)
    return await loop.run_in_executor(None, call, *args)


def settled(session: Session, status: int) -> bool:
    """Whether what the request did to ``session`` was carried out (saved, or logged out):
    not ignored, not read-only, not a 5xx (nothing is saved then)."""
    return status < 500 and session._action != IGNORE and not session._read_only


def forget_old(session: Session) -> None:
    """Delete the old record ``session`` was read from, now that it is saved (synchronously)."""
    found = session._legacy
    if found is None:
        return
    session._legacy = None
    try:
        found.reader.forget(found.value)
    except Exception as exc:
        _not_forgotten(found, exc)


async def aforget_old(session: Session) -> None:
    """:func:`forget_old` for async code: a blocking reader's delete runs in a thread."""
    found = session._legacy
    if found is None:
        return
    session._legacy = None
    forget = found.reader.forget
    try:
        if found.reader.blocking:
            await _off_loop(forget, found.value)
        else:
            forget(found.value)
    except Exception as exc:
        _not_forgotten(found, exc)


def _not_forgotten(found: Found, exc: Exception) -> None:
    logger.warning(
        "sessionware: %s could not delete the old session it read (the new one is saved; the old "
        "record stays until it expires): %s: %s",
        getattr(found.reader, "owner", type(found.reader).__name__),
        type(exc).__name__,
        exc,
    )


def json_safe(value: Any) -> Any:
    """A value msgpack (Flask-Session) may hold as JSON: bytes to base64 text, dates to ISO 8601."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return value


def adopt(
    session: Session,
    found: Found,
    own_cookie: str,
    convert: Callable[[Any], Any] = json_safe,
) -> None:
    """Make ``session`` the old one: its data, the same log-in; written on this response.

    ``own_cookie`` is sessionware's cookie name for this request: a reader's
    cookie of another name is expired on the response (``Session._also_set``),
    so that after a log-out the old cookie cannot bring the old session back.
    Once the session is saved, the adapter calls :func:`forget_old` (the
    reader's ``forget``, if it has one).
    """
    reader, data, _ = found
    if callable(getattr(reader, "forget", None)):
        session._legacy = found
    user = data.get(reader.user_key) if reader.user_key is not None else None
    if isinstance(user, str | int) and not isinstance(user, bool) and str(user):
        session.log_in(user)
    elif user is not None:
        _refused(getattr(reader, "owner", type(reader).__name__), "a user ID that is not a str or int")
    session.update(convert(data))
    if reader.cookie_name != own_cookie:
        session._also_set = (*session._also_set, f"{reader.cookie_name}=; Max-Age=0; Path=/")
    logger.debug("sessionware: read an old session through %s; re-issuing it", type(reader).__name__)
