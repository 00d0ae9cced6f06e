"""The public surface is exactly what __all__ says, and importing it pulls in no extra."""

from __future__ import annotations

import subprocess
import sys
import types

import sessionware
import sessionware.errors
import sessionware.stores
import sessionware.typing

PUBLIC = [
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


def test_the_public_api_is_pinned() -> None:
    assert sessionware.__all__ == PUBLIC
    public = {
        name
        for name, value in vars(sessionware).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # submodules
    }
    assert sorted(public) == sorted(PUBLIC)


def test_public_classes_present_themselves_under_the_package() -> None:
    for name in PUBLIC:
        value = getattr(sessionware, name)
        if isinstance(value, type):
            assert value.__module__ == "sessionware", name


def test_every_error_derives_from_session_error() -> None:
    for name in sessionware.errors.__all__:
        assert issubclass(getattr(sessionware.errors, name), sessionware.SessionError)
    assert issubclass(sessionware.ConfigurationError, ValueError)
    assert issubclass(sessionware.SerializationError, TypeError)
    assert issubclass(sessionware.MissingDependency, ImportError)
    assert issubclass(sessionware.StoreUnavailable, sessionware.StoreError)
    assert issubclass(sessionware.StoreBusy, sessionware.StoreError)


def test_importing_sessionware_imports_no_framework_or_optional_dependency() -> None:
    code = (
        "import sys, sessionware, sessionware.stores;"
        "bad = [m for m in ('starlette', 'fastapi', 'redis', 'psycopg', 'nacl', 'pytest', 'anyio')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert sessionware.__version__ == version("sessionware")


def test_the_legacy_readers_are_pinned() -> None:
    import sessionware.legacy

    assert sessionware.legacy.__all__ == [
        "DjangoCache",
        "DjangoDB",
        "DjangoSignedCookies",
        "FlaskSessionRedis",
        "LegacyReader",
        "StarsessionsCookie",
        "StarsessionsRedis",
    ]
