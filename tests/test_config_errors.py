"""Misconfiguration raises at construction, naming the option and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from sessionware import (
    ConfigurationError,
    CookieStore,
    CSRFMiddleware,
    Expiry,
    MemoryStore,
    SessionMiddleware,
    SQLiteStore,
)
from sessionware import wsgi as sw_wsgi
from sessionware.starlette import SessionMiddleware as StarletteDropIn

from .conftest import SECRET


async def app(scope: Any, receive: Any, send: Any) -> None:
    pass


@pytest.mark.parametrize(
    ("make", "args", "options", "message"),
    [
        (
            SessionMiddleware,
            (app,),
            {"secret_key_base": SECRET, "cookie_secure": True},
            "did you mean 'secure'",
        ),
        (
            SessionMiddleware,
            (app,),
            {"secret_key_base": SECRET, "samesite": "lax"},
            "did you mean 'same_site'",
        ),
        (SessionMiddleware, (app,), {"secret_key_base": SECRET, "cookie": "s"}, "did you mean 'cookie_name'"),
        (sw_wsgi.SessionMiddleware, (app,), {"secret_key_base": SECRET, "idle": 5}, "unknown option 'idle'"),
        (CSRFMiddleware, (app,), {"trusted_origin": ["https://a"]}, "did you mean 'trusted_origins'"),
        (SQLiteStore, ("s.db",), {"tabel": "t"}, "did you mean 'table'"),
        (MemoryStore, (), {"max_session": 3}, "did you mean 'max_sessions'"),
        (CookieStore, (), {"encrypted": False}, "did you mean 'encrypt'"),
        (Expiry, (), {"idle": 60}, "did you mean 'idle_timeout'"),
    ],
)
def test_a_misspelled_option_is_named_with_the_closest_real_one(
    make: Any, args: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make(*args, **options)


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("secret_key", SECRET, "secret_key_base="),
        ("session_cookie", "s", "cookie_name="),
        ("max_age", 3600, "expiry=Expiry"),
        ("https_only", True, "secure=True"),
    ],
)
@pytest.mark.parametrize("middleware", [SessionMiddleware, sw_wsgi.SessionMiddleware])
def test_starlettes_option_names_get_sessionwares_and_the_drop_in(
    middleware: Any, name: str, value: Any, instead: str
) -> None:
    options = {"secret_key_base": SECRET} if name != "secret_key" else {}
    with pytest.raises(ConfigurationError) as raised:
        middleware(app, **options, **{name: value})
    text = str(raised.value)
    assert f"got {name!r}" in text
    assert instead in text
    assert "sessionware.starlette.SessionMiddleware" in text


def test_the_starlette_drop_in_takes_starlettes_names_and_points_back_to_them() -> None:
    StarletteDropIn(app, secret_key=SECRET, session_cookie="s", max_age=60, https_only=True)
    drop_in: Any = StarletteDropIn
    with pytest.raises(ConfigurationError, match="did you mean 'secret_key'"):
        drop_in(app, secret_key_base=SECRET)


def test_a_missing_secret_says_how_to_make_one() -> None:
    with pytest.raises(ConfigurationError, match=r"needs secret_key_base=.*gen-secret"):
        SessionMiddleware(app)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="by name"):
        SessionMiddleware(app, SECRET, secret_key_base=SECRET)  # type: ignore[misc]


def test_an_idle_timeout_longer_than_the_absolute_one_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"idle_timeout \(7200\) to be at most absolute_timeout \(3600\)"
    ):
        Expiry(idle_timeout=7200, absolute_timeout=3600)
    assert Expiry(idle_timeout=3600, absolute_timeout=3600).idle_timeout == 3600


def test_the_checks_leave_copying_alone() -> None:
    import copy

    middleware = SessionMiddleware(app, secret_key_base=SECRET)
    assert copy.copy(middleware).engine is middleware.engine
    assert copy.deepcopy(Expiry(idle_timeout=60, absolute_timeout=120)).idle_timeout == 60
