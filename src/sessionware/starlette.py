"""A drop-in replacement for Starlette's ``SessionMiddleware``.

Change one import and keep every argument::

    # from starlette.middleware.sessions import SessionMiddleware
    from sessionware.starlette import SessionMiddleware

    app.add_middleware(SessionMiddleware, secret_key=os.environ["SECRET_KEY"])

Nobody is logged out by the switch: a cookie Starlette's middleware wrote
(itsdangerous ``TimestampSigner``, base64 JSON) is read once, checked with the
same ``secret_key`` and ``max_age``, and re-issued on that response in
sessionware's encrypted format. The old format is never written.

What changes for the better: the session is encrypted (AES-256-GCM) instead of
signed with HMAC-SHA1 and readable by the client; ``max_age`` is enforced from
the time inside the encrypted payload, not just from the cookie; the session's
lifetime slides with activity (a read-only request refreshes it at most once a
minute) instead of only with writes; ``request.session`` is a sessionware
:class:`~sessionware.Session` (log-in, renew, drop, flash, CSRF and the
per-user registry all work); and any sessionware store can be passed as
``store=``. See ``docs/migration.md`` for the details and the differences.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from ._cookies import CookieAttributes
from ._engine import Engine
from ._expiry import Expiry
from ._keys import KeyRing
from ._session import Session as _Session
from .asgi import SessionMiddleware as _SessionMiddleware
from .asgi import store_unavailable
from .errors import ConfigurationError
from .stores.cookie import CookieStore
from .typing import ASGIApp, AsyncStore, Store

__all__ = ["Session", "SessionMiddleware"]

logger = logging.getLogger("sessionware")

_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_DERIVATION_LABEL = b"sessionware.starlette secret_key v1:"


class Session(_Session):
    """sessionware's session with Starlette's ``accessed`` and ``modified`` flags.

    ``modified`` becomes True on the writes Starlette's ``Session`` counts
    (setting, deleting, ``clear``, ``update``, ``|=``, ``popitem``, ``pop`` of a
    present key, ``setdefault`` of a missing one); ``request.session`` calls
    :meth:`mark_accessed`. The flags are for the app's information only:
    whether a response writes the session is decided, as everywhere in
    sessionware, by comparing the data with what was loaded, so in-place edits
    of nested values are saved too.
    """

    _modified = False

    @property
    def modified(self) -> bool:
        """Whether the app wrote to the session during this request."""
        return self._modified

    def mark_accessed(self) -> None:
        self._accessed = True

    def mark_modified(self) -> None:
        self._write()

    def _write(self) -> None:
        super()._write()
        self._modified = True

    def pop(self, key: str, *default: Any) -> Any:
        if dict.__contains__(self, key):
            return super().pop(key)
        return dict.pop(self, key, *default)  # nothing removed: neither read nor written

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        if dict.__contains__(self, key):
            return self[key]
        return super().setdefault(key, default)


class _StarletteCookie(CookieAttributes):
    """``Set-Cookie`` spelled as Starlette spells it, with its ``Max-Age`` on every write."""

    __slots__ = ("_delete_text", "_flags", "_head_text", "_max_age_text")

    def __init__(
        self,
        name: str,
        *,
        max_age: int | None,
        path: str,
        domain: str | None,
        secure: bool | Literal["auto"],
        same_site: str,
        partitioned: bool,
    ) -> None:
        super().__init__(
            name,
            path=path,
            domain=domain,
            secure=secure,
            same_site=same_site,
            partitioned=partitioned,
            owner="sessionware.starlette.SessionMiddleware",
        )
        self._max_age_text = "" if max_age is None else f"Max-Age={max_age}; "
        base = f"httponly; samesite={same_site.lower()}"
        tail = (f"; domain={domain}" if domain is not None else "") + ("; partitioned" if partitioned else "")
        self._flags = {True: base + "; secure" + tail, False: base + tail}
        self._head_text = f"; path={path}; "
        self._delete_text = f"{name}=null; path={path}; expires={_EPOCH}; "

    def _secure_for(self, https: bool) -> bool:
        return self.secure is True or (self.secure == "auto" and https)

    def header(self, value: str, *, https: bool, max_age: int | None, now: int | None = None) -> str:
        flags = self._flags[self._secure_for(https)]
        return f"{self.name}={value}{self._head_text}{self._max_age_text}{flags}"

    def deletion(self, *, https: bool) -> str:
        return self._delete_text + self._flags[self._secure_for(https)]


class _AlwaysExpired(Expiry):
    """``max_age`` of zero or less: Starlette accepts no cookie back, and neither do we."""

    def is_valid(self, created_at: int, touched_at: int, now: int) -> bool:
        return False

    def ttl(self, created_at: int, touched_at: int, now: int) -> int | None:
        return 1  # a server-side record nobody can load again must not linger


def _secret_key_base(secret_key: str) -> bytes | str:
    """Starlette accepts any ``secret_key``; sessionware's keys need 32 varied bytes.

    A secret that already qualifies is used as it is, so moving on to
    :class:`sessionware.SessionMiddleware` later with
    ``secret_key_base=secret_key`` keeps the cookies valid. A shorter one is
    stretched with SHA-512 -- which adds no strength: a short secret can be
    guessed offline from any cookie, as it could under Starlette -- and a
    warning says so.
    """
    try:
        KeyRing(secret_key)
    except ConfigurationError:
        logger.warning(
            "sessionware.starlette: secret_key is too short or too repetitive to resist offline "
            "guessing (anyone holding a session cookie can try keys); replace it with a random one "
            "from `python -m sessionware gen-secret` (users of the old key are logged out once)"
        )
        return hashlib.sha512(_DERIVATION_LABEL + secret_key.encode("utf-8")).digest()
    return secret_key


def _starlette_reader(secret_key: str, max_age: int | None) -> Callable[[str], dict[str, Any] | None]:
    """Read a cookie Starlette's ``SessionMiddleware`` wrote, as it would."""
    try:
        import itsdangerous
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "sessionware.starlette.SessionMiddleware needs itsdangerous to read the cookies "
            "Starlette's SessionMiddleware wrote: pip install 'sessionware[starlette]', or pass "
            "legacy=False if there are none to keep"
        ) from None
    signer = itsdangerous.TimestampSigner(secret_key)

    def read(value: str) -> dict[str, Any] | None:
        if max_age is not None and max_age <= 0:
            return None
        try:
            payload = signer.unsign(value.encode("utf-8"), max_age=max_age)
            data = json.loads(base64.b64decode(payload))
        except (itsdangerous.BadSignature, binascii.Error, ValueError):
            logger.debug("sessionware.starlette could not read the cookie as a Starlette session")
            return None
        if not isinstance(data, dict):
            return None
        logger.debug("sessionware.starlette read a Starlette session cookie; re-issuing it")
        return data

    return read


class SessionMiddleware(_SessionMiddleware):
    """Starlette's ``SessionMiddleware`` arguments and defaults, sessionware underneath.

    The positional and named arguments are Starlette's, with its defaults
    and meaning; the keyword-only ones after them are sessionware's.

    Options:
        secret_key: The app's secret (str or Starlette's ``Secret``). It keys
            the new cookies and verifies the old ones. Starlette accepts any
            length; a secret shorter than 32 bytes (or too repetitive) still
            works, with a warning at start-up: replace it with
            ``python -m sessionware gen-secret``.
        session_cookie: The cookie's name. Defaults to ``"session"``.
        max_age: Seconds a session lives after its last activity, sent as the
            cookie's ``Max-Age`` on every write. Defaults to 14 days. ``None``
            makes a browser-session cookie with no server-side limit (as in
            Starlette); zero or less makes every session last one response.
        path: Cookie ``Path``. Defaults to ``"/"``.
        same_site: ``"lax"`` (default), ``"strict"`` or ``"none"`` (needs
            ``https_only=True``: browsers refuse ``SameSite=None`` cookies
            without ``Secure``).
        https_only: ``True`` always marks the cookie ``Secure``. ``False``
            (default) marks it ``Secure`` on https requests only -- a
            difference from Starlette, which never does: a browser on https
            keeps the cookie either way, and it then never travels over
            plain http.
        domain: Cookie ``Domain``. Defaults to None (the host that set it).
        partitioned: Add ``Partitioned`` (CHIPS; needs ``https_only=True``).
            Defaults to ``False``.
        store: Where sessions live, as for :class:`sessionware.SessionMiddleware`.
            Defaults to ``CookieStore()``: encrypted cookies, no server.
        expiry: An :class:`~sessionware.Expiry` to use instead of the one
            ``max_age`` implies (an idle timeout of ``max_age`` seconds with no
            absolute limit), e.g. ``"aal2"`` to bound sessions as NIST asks.
        legacy: Read cookies Starlette's own middleware wrote (needs
            ``itsdangerous``). Defaults to ``True``; turn it off once the
            longest ``max_age`` since the switch has passed.
        store_error_app, cookie_cache, record_ip, max_sessions_per_user,
        on_session_limit, clock: As for :class:`sessionware.SessionMiddleware`.

    Example::

        from sessionware.starlette import SessionMiddleware

        app = Starlette(routes=routes, middleware=[
            Middleware(SessionMiddleware, secret_key=config("SECRET_KEY"), https_only=True),
        ])
    """

    _renamed = {}  # noqa: RUF012 - Starlette's names are this class's own

    def __init__(
        self,
        app: ASGIApp,
        secret_key: Any,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,  # 14 days, in seconds
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: CookieStore | Store | AsyncStore | None = None,
        expiry: Expiry | str | None = None,
        legacy: bool = True,
        store_error_app: ASGIApp = store_unavailable,
        cookie_cache: int = 1024,
        record_ip: bool = False,
        max_sessions_per_user: int | None = None,
        on_session_limit: str = "evict_oldest",
        clock: Callable[[], float] = time.time,
    ) -> None:
        owner = "sessionware.starlette.SessionMiddleware"
        key = str(secret_key)  # Starlette's Secret reveals its value through str()
        if not key:
            raise ConfigurationError(
                f"{owner} expects a non-empty secret_key; generate one with: python -m sessionware gen-secret"
            )
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise ConfigurationError(
                f"{owner} expects max_age to be a number of seconds or None, got {max_age!r}"
            )
        if type(https_only) is not bool:
            raise ConfigurationError(f"{owner} expects https_only to be True or False, got {https_only!r}")
        if expiry is None:
            if max_age is None:
                expiry = Expiry(idle_timeout=None, absolute_timeout=None, allow_unlimited=True)
            elif max_age <= 0:
                expiry = _AlwaysExpired(idle_timeout=None, absolute_timeout=None, allow_unlimited=True)
            else:
                expiry = Expiry(idle_timeout=max_age, absolute_timeout=None)
        secure: bool | Literal["auto"] = True if https_only else "auto"
        super().__init__(
            app,
            secret_key_base=_secret_key_base(key),
            store=store,
            cookie_name=session_cookie,
            expiry=expiry,
            secure=secure,
            same_site=same_site,
            path=path,
            domain=domain,
            partitioned=partitioned,
            store_error_app=store_error_app,
            cookie_cache=cookie_cache,
            record_ip=record_ip,
            max_sessions_per_user=max_sessions_per_user,
            on_session_limit=on_session_limit,
            clock=clock,
        )
        engine: Engine = self.engine
        engine.cookie = _StarletteCookie(
            session_cookie,
            max_age=max_age,
            path=path,
            domain=domain,
            secure=secure,
            same_site=same_site,
            partitioned=partitioned,
        )
        engine.session_class = Session
        self.max_age = max_age
        if legacy:
            self._legacy = _starlette_reader(key, max_age)
