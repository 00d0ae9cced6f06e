"""Every exception sessionware raises.

The hierarchy (``tests/test_docs.py`` checks it against the classes)::

    SessionError
    ├── ConfigurationError   (also ValueError)   bad options; raised at construction, never later
    ├── MissingDependency    (also ImportError)  an optional extra is not installed
    ├── InvalidCookie                            raised by the public codec API only; the
    │                                            middleware turns a bad cookie into an empty session
    ├── SessionTooLarge                          the outgoing cookie would exceed 4096 bytes
    ├── SerializationError   (also TypeError)    a session value is not JSON-serializable
    ├── CSRFError                                status_code 403: a request failed the CSRF check
    ├── ReauthenticationRequired                 status_code 401: a sensitive action needs a fresh log-in
    ├── NotSupported                             the store cannot do that (e.g. list cookie sessions)
    ├── SessionLimitReached                      status_code 409: a user has max_sessions_per_user already
    ├── phoenix.EtfError     (also ValueError)   an Erlang term could not be decoded or encoded
    ├── fastapi.InvalidSessionValue (also TypeError)  a session_value() dependency found another type
    └── StoreError                               a server-side store failed
        ├── StoreUnavailable                     the store could not be reached or did not answer
        └── StoreBusy                            the store answered, but a lock stayed held too long

Catch :class:`SessionError` to handle anything sessionware raises::

    try:
        ...
    except sessionware.SessionError as exc:
        ...
"""

from __future__ import annotations

__all__ = [
    "CSRFError",
    "ConfigurationError",
    "InvalidCookie",
    "MissingDependency",
    "NotSupported",
    "ReauthenticationRequired",
    "SerializationError",
    "SessionError",
    "SessionLimitReached",
    "SessionTooLarge",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
]


class SessionError(Exception):
    """Base class of every exception sessionware defines."""


class ConfigurationError(SessionError, ValueError):
    """An option is missing or invalid.

    Raised by constructors, so a misconfigured app fails at start-up. The
    message names the component, the option and what it expects.
    """


class MissingDependency(SessionError, ImportError):
    """An optional dependency is not installed.

    The message carries the exact ``pip install`` command: of sessionware's
    extra that brings the package, or (``extra=None``, for a framework the app
    itself depends on, such as FastAPI or Litestar) of the package itself.
    """

    def __init__(self, package: str, extra: str | None = None) -> None:
        self.package = package
        self.extra = extra
        command = f"pip install 'sessionware[{extra}]'" if extra is not None else f"pip install {package}"
        super().__init__(
            f"sessionware needs the {package!r} package for this feature; install it with: {command}"
        )


class InvalidCookie(SessionError):
    """A cookie value could not be verified or decoded.

    ``reason`` is a short code (``"size"``, ``"format"``, ``"version"``,
    ``"key"``, ``"mac"``, ``"payload"``) fit for logs; it never contains the value.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid session cookie ({reason})")


class SessionTooLarge(SessionError):
    """The ``Set-Cookie`` value would exceed what browsers store (4096 bytes).

    Browsers silently drop such cookies, which looks to the user like a
    logout, so sessionware refuses to send one.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the session cookie would be {size} bytes, over the {limit}-byte limit browsers "
            "keep; store less in the session or use a server-side store "
            "(MemoryStore, SQLiteStore, ...) so the cookie only carries an ID"
        )


class SerializationError(SessionError, TypeError):
    """A session value cannot be stored: sessions hold JSON data only.

    ``key`` names the top-level session key whose value failed.
    """

    def __init__(self, key: str | None, detail: str) -> None:
        self.key = key
        where = f"session[{key!r}]" if key is not None else "the session"
        super().__init__(
            f"{where} cannot be stored: {detail}. Sessions hold JSON values only "
            "(dict with str keys, list, str, int, float, bool, None)"
        )


class CSRFError(SessionError):
    """A state-changing request failed the CSRF check. ``reason`` says why (never the token)."""

    status_code = 403

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"invalid CSRF (Cross Site Request Forgery) token ({reason}); please make sure that:\n"
            "  * the session cookie is being sent and SessionMiddleware is installed\n"
            "  * the request includes a valid '_csrf_token' form field or 'x-csrf-token' header, "
            "made for this session (tokens change at log-in)\n"
            "  * the request comes from this site, or an origin listed in trusted_origins"
        )


class ReauthenticationRequired(SessionError):
    """A sensitive action needs an authentication more recent than ``max_age`` seconds.

    Raised by :meth:`~sessionware.Session.require_recent_auth`; the middleware
    answers 401 unless the app catches it (to redirect to a re-authentication
    page, say).
    """

    status_code = 401

    def __init__(self, max_age: int, level: str | None = None) -> None:
        self.max_age = max_age
        self.level = level
        needed = f" at level {level!r}" if level else ""
        super().__init__(f"re-authentication required: log in again{needed} (within the last {max_age} s)")


class NotSupported(SessionError):
    """The configured store cannot do this (for example, list a cookie store's sessions)."""


class SessionLimitReached(SessionError):
    """A log-in would exceed ``max_sessions_per_user`` with ``on_session_limit="reject"``.

    The log-in response is replaced by a 409 and no session is created.
    """

    status_code = 409

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"this account already has {limit} active session(s), the most allowed; "
            "log out elsewhere (or revoke a session) first"
        )


class StoreError(SessionError):
    """A server-side store failed. Never swallowed: the request fails closed."""


class StoreUnavailable(StoreError):
    """The store could not be reached, or did not answer in time."""


class StoreBusy(StoreError):
    """The store is up, but a lock it needed stayed held past the store's timeout.

    Contention, not an outage: SQLite's database lock or a PostgreSQL row or
    table lock that other writers (or a long transaction, a migration) kept
    for the whole timeout, or a Redis busy running a long script. Session
    writes themselves hold locks for microseconds, so this means something
    else holds one far longer.
    """
