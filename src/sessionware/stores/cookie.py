"""The cookie store: the session lives in the cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .._arguments import CheckedArguments
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._expiry import Expiry
    from .._keys import KeyRing

__all__ = ["CookieCodec", "CookieStore"]


class CookieCodec(Protocol):
    """**Protocol**: how a cookie store's session record becomes the cookie value and back.

    The record is ``sessionware._record``'s layout (times, metadata, data).
    ``decode`` raises :class:`~sessionware.InvalidCookie` for anything it does
    not accept and returns the record with whether a secret other than the
    first verified it (the cookie is then re-issued). A codec whose data part
    is not JSON also has ``load_data(bytes) -> dict`` and ``dump_data(dict) ->
    bytes``; a record whose ``created_at`` is 0 carries no times (the session
    starts at the request that reads it).
    """

    def encode(self, record: bytes) -> str: ...

    def decode(self, value: str) -> tuple[bytes, bool]: ...


class CookieStore(CheckedArguments):
    """Keep the session in the cookie itself.

    The default store. The session's data and timestamps travel in the cookie,
    encrypted and authenticated with AES-256-GCM under a key derived from
    ``secret_key_base`` and the cookie name, so the client can neither read nor
    change them. Browsers keep at most 4096 bytes per cookie: a session that
    would not fit raises :class:`~sessionware.SessionTooLarge` instead of being
    dropped silently; move to a server-side store when that happens.

    **Log-out and replayed cookies.** Without a server record, a copy of the
    cookie taken before a log-out would stay valid until the session's own
    deadline. Give the store a ``revocation`` store and every *logged-in*
    cookie session also gets a small record there (its random ID, user and
    client, no data): :meth:`~sessionware.Session.log_out`, renewals and
    revocations delete it, and a cookie whose record is gone is refused. A
    logged-in request then costs one read of that store (anonymous ones none),
    and the user's sessions can be listed and revoked like server-side ones.
    Without it, this limitation is logged once per process at start-up, unless
    ``revocation=False`` says that cookie-only sessions are what the app wants
    (short timeouts make a copied cookie's lifetime short too). This is the
    one place the trade-off is described; the README and the docs link here.

    Options:
        encrypt: ``True`` (default) encrypts the payload. ``False`` only signs
            it with HMAC-SHA256: the client cannot change it but **can read
            it** (it is base64-encoded JSON), so never put personal data or
            secrets in a signed-only session.
        revocation: A server-side store (``SQLiteStore``, ``RedisStore``,
            ``PostgresStore``, ``MemoryStore`` for one process) that keeps the
            records above. Defaults to None: no server state, and the
            limitation above, logged at start-up. ``False``: no server state,
            deliberately; nothing is logged.

    Example::

        SessionMiddleware(app, secret_key_base=secret,
                          store=CookieStore(revocation=SQLiteStore("revoked.db")))
    """

    __slots__ = ("cookie_only", "encrypt", "revocation")

    #: The expiry the middleware uses when it is given none.
    default_expiry: ClassVar[Expiry | str] = "aal2"

    def __init__(self, *, encrypt: bool = True, revocation: Any = None) -> None:
        from ..typing import AsyncStore, Store

        #: True when ``revocation=False`` acknowledged cookie-only sessions.
        self.cookie_only = revocation is False
        if revocation is False:
            revocation = None
        if revocation is not None and (
            isinstance(revocation, type | CookieStore) or not isinstance(revocation, Store | AsyncStore)
        ):
            raise ConfigurationError(
                "CookieStore expects revocation to be a server-side store instance "
                f"(SQLiteStore(...), RedisStore(...), ...) or False, got {revocation!r}"
            )
        self.encrypt = bool(encrypt)
        self.revocation = revocation

    def __repr__(self) -> str:
        extra = f", revocation={self.revocation!r}" if self.revocation is not None else ""
        extra = ", revocation=False" if self.cookie_only else extra
        return f"CookieStore(encrypt={self.encrypt}{extra})"

    def expiry_warning(self, expiry: Expiry) -> str | None:
        """Why ``expiry``, chosen by the app, may surprise with this store (logged at start-up), or None."""
        return None

    def valid_csrf_token(self, keys: KeyRing, state: str, token: str, host: str) -> bool:
        """Whether ``token``, not a masked token, is still valid for CSRF state ``state`` on ``host``.

        For a store that shares its cookie with a framework whose pages carry
        other token forms (Plug's host-bound tokens). Defaults to False.
        """
        return False

    def cookie_codec(self, keys: KeyRing, cookie_name: str) -> CookieCodec:
        """The cookie format, keyed by ``keys`` and bound to ``cookie_name``.

        The hook for a store that owns its cookie format (as
        :class:`sessionware.phoenix.PhoenixCookieStore` writes Plug's): override
        it to return another :class:`CookieCodec`.
        """
        from .._codec import EncryptedCodec, SignedCodec

        return (EncryptedCodec if self.encrypt else SignedCodec)(keys, cookie_name)
