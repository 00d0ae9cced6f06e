"""sessionware: Plug-grade user sessions for Python web apps.

One middleware, a pluggable store and a small session API::

    from sessionware import SessionMiddleware, SQLiteStore

    app.add_middleware(SessionMiddleware, secret_key_base=secret, store=SQLiteStore("sessions.db"))

This module only re-exports. The public submodules:

- ``sessionware.asgi``: ``SessionMiddleware`` for any ASGI app, ``get_session``, ``user_sessions``
- ``sessionware.wsgi``: the same for WSGI apps, and its ``CSRFMiddleware``
- ``sessionware.csrf``: ``CSRFMiddleware`` and the token functions
- ``sessionware.stores``: ``CookieStore``, ``MemoryStore``, ``SQLiteStore`` and ``from_url``;
  ``sessionware.stores.redis`` (``RedisStore``) and ``sessionware.stores.postgres``
  (``PostgresStore``) need the ``redis`` and ``postgres`` extras; the stores' own modules are
  ``sessionware.stores.cookie``, ``sessionware.stores.memory`` and ``sessionware.stores.sqlite``
- ``sessionware.dbsc``: ``DBSC``, Device Bound Session Credentials for the middleware
- ``sessionware.remember``: ``RememberMe``, remember-me cookies with theft detection
- ``sessionware.events``: ``Events`` and ``SessionEvent``, the app's lifecycle hooks
- ``sessionware.telemetry``: ``OpenTelemetry`` metrics and spans (``otel`` extra)
- ``sessionware.anomaly``: the anomaly hook's ``Changes`` and ``default_policy``
- ``sessionware.errors``: every exception, under ``SessionError``
- ``sessionware.typing``: the ``Store``, ``AsyncStore`` and ``Registry`` protocols, ``Change``
- ``sessionware.testing``: ``FakeClock``, test-client helpers, the store contract suites
- ``sessionware.pytest_plugin``: the ``session_clock``, ``session_secret`` and
  ``session_store`` fixtures (installed as a pytest plugin)
- ``sessionware.starlette``: a drop-in for Starlette's ``SessionMiddleware``
- ``sessionware.fastapi``: ``SessionDep`` and ``session_value`` dependencies
- ``sessionware.litestar``: ``SessionwarePlugin``
- ``sessionware.flask``: the ``Sessionware`` extension (``flask`` extra)
- ``sessionware.django``: a Django session engine, ``SESSION_ENGINE = "sessionware.django"``
  (``django`` extra)
- ``sessionware.legacy``: readers of Flask-Session, starsessions and Django sessions (``legacy=``)
- ``sessionware.phoenix``: Plug/Phoenix session cookies (``phoenix`` extra for encrypted ones)
"""

from ._expiry import AAL1 as AAL1
from ._expiry import AAL2 as AAL2
from ._expiry import AAL3 as AAL3
from ._expiry import Expiry as Expiry
from ._flash import get_flashes as get_flashes
from ._flash import put_flash as put_flash
from ._registry import AsyncUserSessions as AsyncUserSessions
from ._registry import SessionInfo as SessionInfo
from ._registry import UserSessions as UserSessions
from ._session import Session as Session
from .asgi import SessionMiddleware as SessionMiddleware
from .asgi import get_session as get_session
from .asgi import user_sessions as user_sessions
from .csrf import CSRFMiddleware as CSRFMiddleware
from .csrf import csrf_input as csrf_input
from .csrf import csrf_token as csrf_token
from .csrf import verify_csrf_token as verify_csrf_token
from .dbsc import DBSC as DBSC
from .errors import ConfigurationError as ConfigurationError
from .errors import CSRFError as CSRFError
from .errors import InvalidCookie as InvalidCookie
from .errors import MissingDependency as MissingDependency
from .errors import NotSupported as NotSupported
from .errors import ReauthenticationRequired as ReauthenticationRequired
from .errors import SerializationError as SerializationError
from .errors import SessionError as SessionError
from .errors import SessionLimitReached as SessionLimitReached
from .errors import SessionTooLarge as SessionTooLarge
from .errors import StoreBusy as StoreBusy
from .errors import StoreError as StoreError
from .errors import StoreUnavailable as StoreUnavailable
from .remember import RememberMe as RememberMe
from .stores import CookieStore as CookieStore
from .stores import MemoryStore as MemoryStore
from .stores import SQLiteStore as SQLiteStore

__all__ = [
    "AAL1",
    "AAL2",
    "AAL3",
    "DBSC",
    "AsyncUserSessions",
    "CSRFError",
    "CSRFMiddleware",
    "ConfigurationError",
    "CookieStore",
    "Expiry",
    "InvalidCookie",
    "MemoryStore",
    "MissingDependency",
    "NotSupported",
    "ReauthenticationRequired",
    "RememberMe",
    "SQLiteStore",
    "SerializationError",
    "Session",
    "SessionError",
    "SessionInfo",
    "SessionLimitReached",
    "SessionMiddleware",
    "SessionTooLarge",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "UserSessions",
    "csrf_input",
    "csrf_token",
    "get_flashes",
    "get_session",
    "put_flash",
    "user_sessions",
    "verify_csrf_token",
]

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = "sessionware"  # so reprs and docs show the public path
del _name, _value


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("sessionware")
    raise AttributeError(f"module 'sessionware' has no attribute {name!r}")
