"""The cookie store: the whole session lives in the cookie."""

from __future__ import annotations

__all__ = ["CookieStore"]


class CookieStore:
    """Keep the session in the cookie itself; no server-side state.

    The default store. The session's data and timestamps travel in the cookie,
    encrypted and authenticated with AES-256-GCM under a key derived from
    ``secret_key_base`` and the cookie name, so the client can neither read nor
    change them. Browsers keep at most 4096 bytes per cookie: a session that
    would not fit raises :class:`~sessionware.SessionTooLarge` instead of being
    dropped silently; move to a server-side store when that happens.

    Limitation: a copy of the cookie taken before a log-out stays valid until
    the session's own deadline, because there is no server record to delete.
    Keep timeouts short, or use a server-side store where that matters.

    Options:
        encrypt: ``True`` (default) encrypts the payload. ``False`` only signs
            it with HMAC-SHA256: the client cannot change it but **can read
            it** (it is base64-encoded JSON), so never put personal data or
            secrets in a signed-only session.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=CookieStore())
    """

    __slots__ = ("encrypt",)

    def __init__(self, *, encrypt: bool = True) -> None:
        self.encrypt = bool(encrypt)

    def __repr__(self) -> str:
        return f"CookieStore(encrypt={self.encrypt})"
