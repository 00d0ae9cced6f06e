"""Log-in done right, through real requests of a Starlette app: SW-06, SW-07, SW-21, SW-22, SW-26,
and attack scenarios 1 (fixation), 2 (replay after log-out) and 15 (token in the URL).

SW-18 to SW-20 (revoking and listing a user's sessions) are in test_registry.py, on every
store with a registry; SW-29 to SW-35 (CSRF) in test_csrf.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionware import (
    CookieStore,
    Expiry,
    SessionMiddleware,
    SQLiteStore,
    get_flashes,
    get_session,
    put_flash,
    user_sessions,
)
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import SECRET, Reply, call
from .doubles import Recording

UA = [("user-agent", "auth-tests")]


async def log_in(request: Request) -> Response:
    get_session(request).log_in(request.path_params["user"], level=request.query_params.get("level"))
    return PlainTextResponse("in")


async def log_out(request: Request) -> Response:
    session = get_session(request)
    session.log_out()
    if "flash" in request.query_params:
        put_flash(request, "info", "You are logged out.")
        return RedirectResponse("/flashes", status_code=303)
    return PlainTextResponse("out")


async def clear_then(request: Request) -> Response:
    """How Starlette and Flask apps log out: empty the session, perhaps write a flash after."""
    session = get_session(request)
    session.clear()
    if "note" in request.query_params:
        session["note"] = request.query_params["note"]
    return PlainTextResponse("cleared")


async def whoami(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user_id, "auth_at": session.auth_at, "level": session.auth_level})


async def sudo(request: Request) -> Response:
    get_session(request).require_recent_auth(300, level=request.query_params.get("level"))
    return PlainTextResponse("sensitive")


async def reauth(request: Request) -> Response:
    get_session(request).reauthenticated(level=request.query_params.get("level"))
    return PlainTextResponse("again")


async def renew(request: Request) -> Response:
    get_session(request).renew()
    return PlainTextResponse("renewed")


async def flashes(request: Request) -> Response:
    return JSONResponse(get_flashes(request))


async def flash_then_redirect(request: Request) -> Response:
    put_flash(request, "info", "Saved.")
    put_flash(request, "error", "But check this.")
    return RedirectResponse("/flashes", status_code=303)


async def revoke_all(request: Request) -> Response:
    user = request.path_params["user"]
    return JSONResponse({"revoked": await user_sessions(request).revoke_all(user)})


async def count(request: Request) -> Response:
    session = get_session(request)
    session["n"] = session.get("n", 0) + 1
    return JSONResponse(session["n"])


async def grow_and_renew(request: Request) -> Response:
    session = get_session(request)
    session["blob"] = "x" * 5000  # more than a cookie can hold
    session.renew()
    return PlainTextResponse("renewed")


async def others_out(request: Request) -> Response:
    session = get_session(request)
    assert session.user_id is not None
    return JSONResponse(await user_sessions(request).revoke_all(session.user_id, keep=session))


def auth_app(store: Any, clock: FakeClock, **options: Any) -> ASGIApp:
    routes = [
        Route("/count", count),
        Route("/grow-and-renew", grow_and_renew),
        Route("/others-out", others_out),
        Route("/login/{user}", log_in),
        Route("/logout", log_out),
        Route("/clear", clear_then),
        Route("/whoami", whoami),
        Route("/sudo", sudo),
        Route("/reauth", reauth),
        Route("/renew", renew),
        Route("/flashes", flashes),
        Route("/flash", flash_then_redirect),
        Route("/revoke-all/{user}", revoke_all),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=store, clock=clock, **options)
    return app


def get(app: ASGIApp, path: str, cookie: str | None = None, **options: Any) -> Reply:
    return call(app, path, cookie=cookie, headers=UA, **options)


def user_of(app: ASGIApp, cookie: str) -> Any:
    return get(app, "/whoami", cookie).json()["user"]


REVOCABLE = ["memory", "sqlite", "redis", "postgres", "cookie-revocation"]


@pytest.fixture(params=REVOCABLE)
def revocable(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    """Stores where a log-out kills every copy of the cookie (server-side, or cookie + revocation)."""
    if request.param == "cookie-revocation":
        return CookieStore(revocation=SQLiteStore(tmp_path / "revocation.db", clock=clock))
    from .conftest import make_server_store

    return make_server_store(str(request.param), request, tmp_path, clock)


# -- SW-06, scenario 1: fixation ------------------------------------------------------------


def test_sw06_scenario_1_a_planted_or_pre_login_id_never_becomes_the_victims_session(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock)
    # the attacker gets an anonymous session of their own and plants its cookie in the victim's browser
    planted = get(app, "/flash").cookie()
    victim = get(app, "/login/victim", planted).cookie()
    assert victim != planted
    assert user_of(app, victim) == "victim"
    assert user_of(app, planted) is None  # the attacker's copy is not logged in
    # an invented ID is not adopted either
    invented = "session=i1." + "A" * 102
    after = get(app, "/login/victim", invented).cookie()
    assert after != invented
    assert user_of(app, invented) is None


def test_sw06_re_authentication_issues_a_new_id_and_kills_the_old_one(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock)
    first = get(app, "/login/alice").cookie()
    second = get(app, "/reauth", first).cookie()
    assert second != first
    assert user_of(app, second) == "alice"
    assert user_of(app, first) is None


# -- SW-07, scenario 2: log-out and replay ---------------------------------------------------


def test_sw07_scenario_2_log_out_kills_every_copy_and_expires_the_cookie(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock, secure=True, same_site="strict")
    login = get(app, "/login/alice")
    cookie = login.cookie()
    copy = cookie  # taken by an attacker before the log-out
    out = get(app, "/logout", cookie)
    deletion = out.set_cookie
    assert deletion is not None
    assert "Max-Age=0" in deletion
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attribute in deletion
        assert attribute in (login.set_cookie or "")
    assert user_of(app, copy) is None  # replayed from a second client
    assert get(app, "/logout", copy).status == 200  # logging out again is harmless


@pytest.mark.parametrize("then_write", [False, True])
def test_sw07_clearing_a_logged_in_session_is_a_log_out(
    revocable: Any, clock: FakeClock, then_write: bool
) -> None:
    app = auth_app(revocable, clock)
    cookie = get(app, "/login/alice").cookie()
    other = get(app, "/login/alice").cookie()  # the same user elsewhere: stays logged in
    reply = get(app, "/clear?note=bye" if then_write else "/clear", cookie)
    assert reply.set_cookie is not None
    assert user_of(app, cookie) is None  # the identity is gone and the old ID dead (revoked)
    if then_write:
        fresh = reply.cookie()
        assert fresh != cookie
        assert user_of(app, fresh) is None
        assert get(app, "/count", fresh).json() == 1  # a fresh, anonymous session
    else:
        assert "Max-Age=0" in reply.set_cookie
    assert user_of(app, other) == "alice"
    assert get(app, "/revoke-all/alice", other).json() == {"revoked": 1}  # the cleared one left the registry


def test_clearing_an_anonymous_session_only_removes_its_data(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock)
    first = get(app, "/count")
    second = get(app, "/count", first.cookie())
    assert second.json() == 2
    cleared = get(app, "/clear?note=x", first.cookie())
    assert "Max-Age=0" not in (cleared.set_cookie or "")
    if not isinstance(revocable, CookieStore):  # server-side: the same ID lives on
        assert cleared.set_cookie is None
    assert get(app, "/count", cleared.cookie() if cleared.set_cookie else first.cookie()).json() == 1


def test_sw07_a_flash_after_log_out_lives_in_a_fresh_anonymous_session(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock)
    cookie = get(app, "/login/alice").cookie()
    out = get(app, "/logout?flash=1", cookie)
    assert out.status == 303
    fresh = out.cookie()
    assert fresh != cookie
    assert get(app, "/flashes", fresh).json() == {"info": "You are logged out."}
    assert user_of(app, fresh) is None
    assert user_of(app, cookie) is None


@pytest.mark.parametrize("how", ["renew", "revoke-all"])
def test_sw26_scenario_2_a_copied_cookie_dies_with_renewal_and_revocation(
    revocable: Any, clock: FakeClock, how: str
) -> None:
    app = auth_app(revocable, clock)
    cookie = get(app, "/login/alice").cookie()
    copy = cookie
    if how == "renew":
        cookie = get(app, "/renew", cookie).cookie()
        assert user_of(app, cookie) == "alice"
    else:
        other = get(app, "/login/bob").cookie()
        assert get(app, "/revoke-all/alice", other).json() == {"revoked": 1}
    assert user_of(app, copy) is None


def test_sw26_without_a_revocation_store_the_limit_is_logged_and_a_copy_lives_until_expiry(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        app = auth_app(CookieStore(), clock, expiry=Expiry(idle_timeout=None, absolute_timeout=3600))
        cookie = get(app, "/login/alice").cookie()
    assert any("no revocation store" in record.getMessage() for record in caplog.records)
    get(app, "/logout", cookie)
    assert user_of(app, cookie) == "alice"  # the documented limitation: the copy still works...
    clock.advance(3600)
    assert user_of(app, cookie) is None  # ...until its own deadline, never beyond


def test_sw26_re_encoding_a_revoked_cookie_does_not_get_past_the_check(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = auth_app(CookieStore(revocation=SQLiteStore(tmp_path / "r.db", clock=clock)), clock)
    cookie = get(app, "/login/alice").cookie()
    get(app, "/logout", cookie)
    name, value = cookie.split("=", 1)
    for variant in (value + "=", value + "==", '"' + value + '"', value.replace("-", "+").replace("_", "/")):
        assert user_of(app, f"{name}={variant}") is None


def test_sw26_a_cookie_session_that_writes_on_every_request_stays_revocable_and_alive(
    tmp_path: Path, clock: FakeClock
) -> None:
    revocation = SQLiteStore(tmp_path / "revocation.db", clock=clock)
    app = auth_app(CookieStore(revocation=revocation), clock)  # aal2: 30 minutes idle
    cookie = get(app, "/login/alice").cookie()
    for n in range(1, 13):  # an hour of writes, five minutes apart
        clock.advance(5 * 60)
        reply = get(app, "/count", cookie)
        assert reply.json() == n
        cookie = reply.cookie()
        assert user_of(app, cookie) == "alice"
    # The revocation record kept up with the activity, so revocation still works.
    assert get(app, "/revoke-all/alice").json() == {"revoked": 1}
    assert user_of(app, cookie) is None


def test_a_session_too_large_for_its_cookie_does_not_revoke_the_one_the_browser_holds(
    tmp_path: Path, clock: FakeClock
) -> None:
    from sessionware import SessionTooLarge

    app = auth_app(CookieStore(revocation=SQLiteStore(tmp_path / "revocation.db", clock=clock)), clock)
    cookie = get(app, "/login/alice").cookie()
    with pytest.raises(SessionTooLarge):
        get(app, "/grow-and-renew", cookie)
    assert user_of(app, cookie) == "alice"


def test_sw39_a_revocation_store_that_is_down_fails_closed(clock: FakeClock) -> None:
    revocation = Recording(clock=clock)
    app = auth_app(CookieStore(revocation=revocation), clock)
    cookie = get(app, "/login/alice").cookie()
    revocation.down = True
    assert get(app, "/whoami", cookie).status == 503  # never treated as logged in unchecked
    revocation.down = False
    assert user_of(app, cookie) == "alice"


# -- SW-21: concurrent sessions per user ------------------------------------------------------


def test_sw21_the_oldest_session_is_evicted_beyond_the_limit(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock, max_sessions_per_user=2)
    cookies = []
    for _ in range(3):
        cookies.append(get(app, "/login/alice").cookie())
        clock.advance(10)
    assert [user_of(app, cookie) for cookie in cookies] == [None, "alice", "alice"]


def test_sw21_a_log_in_beyond_the_limit_can_be_refused(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock, max_sessions_per_user=2, on_session_limit="reject")
    first, second = get(app, "/login/alice").cookie(), get(app, "/login/alice").cookie()
    third = get(app, "/login/alice")
    assert third.status == 409
    assert third.set_cookie is None
    assert b"2 active session" in third.body
    assert [user_of(app, first), user_of(app, second)] == ["alice", "alice"]
    get(app, "/logout", first)
    assert get(app, "/login/alice").status == 200  # room again


def test_sw21_renewing_a_session_at_the_limit_keeps_it(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock, max_sessions_per_user=1)
    cookie = get(app, "/login/alice").cookie()
    clock.advance(5)
    for path in ("/reauth", "/renew", "/others-out", "/login/alice"):
        reply = get(app, path, cookie)
        assert reply.status == 200, path
        assert reply.set_cookie is not None
        assert "Max-Age=0" not in reply.set_cookie, path
        cookie = reply.cookie()
        assert user_of(app, cookie) == "alice", path
        clock.advance(5)


def test_sw21_renewing_the_older_session_evicts_neither(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock, max_sessions_per_user=2)
    older = get(app, "/login/alice").cookie()
    clock.advance(10)
    newer = get(app, "/login/alice").cookie()
    clock.advance(10)
    renewed = get(app, "/reauth", older).cookie()
    assert [user_of(app, renewed), user_of(app, newer), user_of(app, older)] == ["alice", "alice", None]


def test_sw21_the_limit_needs_a_registry() -> None:
    from sessionware import ConfigurationError

    async def noop(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    with pytest.raises(ConfigurationError, match="registry"):
        SessionMiddleware(noop, secret_key_base=SECRET, store=CookieStore(), max_sessions_per_user=3)


# -- SW-22: recent authentication ------------------------------------------------------------


def test_sw22_sensitive_actions_need_a_recent_authentication(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock)
    cookie = get(app, "/login/alice").cookie()
    assert get(app, "/sudo", cookie).status == 200
    clock.advance(600)  # ten minutes later
    refused = get(app, "/sudo", cookie)
    assert refused.status == 401
    assert b"re-authentication required" in refused.body
    again = get(app, "/reauth", cookie)
    renewed = again.cookie()
    assert renewed != cookie  # a new ID on re-authentication
    assert get(app, "/sudo", renewed).status == 200
    assert get(app, "/whoami", renewed).json()["auth_at"] == int(clock())


def test_sw22_a_level_can_be_required_and_anonymous_sessions_never_pass(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock)
    anonymous = get(app, "/flash").cookie()
    assert get(app, "/sudo", anonymous).status == 401  # half-authenticated or anonymous: not logged in
    cookie = get(app, "/login/alice?level=password").cookie()
    assert get(app, "/sudo?level=mfa", cookie).status == 401
    stepped_up = get(app, "/reauth?level=mfa", cookie).cookie()
    assert get(app, "/sudo?level=mfa", stepped_up).status == 200
    assert get(app, "/whoami", stepped_up).json()["level"] == "mfa"


def test_sw22_re_authentication_restarts_both_timeouts(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock, expiry=Expiry(idle_timeout=600, absolute_timeout=1800))
    cookie = get(app, "/login/alice").cookie()
    for _ in range(3):
        clock.advance(500)
        reply = get(app, "/whoami", cookie)
        cookie = reply.cookie() if reply.set_cookie else cookie
    cookie = get(app, "/reauth", cookie).cookie()  # at 1500 s
    for _ in range(3):
        clock.advance(500)
        reply = get(app, "/whoami", cookie)
        assert reply.json()["user"] == "alice"  # past the first 1800 s deadline
        cookie = reply.cookie() if reply.set_cookie else cookie


# -- flash -------------------------------------------------------------------------------------------


def test_flash_messages_survive_one_redirect_and_are_gone_once_read(revocable: Any, clock: FakeClock) -> None:
    app = auth_app(revocable, clock)
    reply = get(app, "/flash")
    cookie = reply.cookie()
    shown = get(app, "/flashes", cookie)
    assert shown.json() == {"info": "Saved.", "error": "But check this."}
    if shown.set_cookie:
        cookie = shown.cookie()
    assert get(app, "/flashes", cookie).json() == {}


def test_flash_is_kept_where_phoenix_keeps_it() -> None:
    from sessionware import Session

    session = Session()
    put_flash(session, "info", "Welcome back.")
    put_flash(session, "info", "Replaced.")
    assert dict(session) == {"phoenix_flash": {"info": "Replaced."}}
    assert get_flashes(session) == {"info": "Replaced."}
    assert get_flashes(session) == {}


# -- scenario 15: the session never rides in a URL -------------------------------------------------


def test_scenario_15_a_session_id_in_the_url_form_or_headers_is_ignored(
    revocable: Any, clock: FakeClock
) -> None:
    app = auth_app(revocable, clock)
    value = get(app, "/login/alice").cookie().split("=", 1)[1]
    assert get(app, f"/whoami?session={value}").json()["user"] is None
    assert get(app, f"/whoami;jsessionid={value}").status in (200, 404)
    for header in ("x-session-id", "authorization"):
        reply = call(app, "/whoami", headers=[(header, value)])
        assert reply.json()["user"] is None
    out = get(app, "/logout?flash=1", f"session={value}")
    assert value not in (out.header("location") or "")


def test_the_cookie_only_warning_is_logged_once_per_process_and_can_be_acknowledged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        for _ in range(3):  # three middlewares, or three apps, in one worker
            get(auth_app(CookieStore(), clock), "/count")  # Starlette builds middleware on first use
    assert caplog.text.count("has no revocation store") == 1
    assert "CookieStore(revocation=False)" in caplog.text
    caplog.clear()
    from sessionware import _engine

    _engine._warned.clear()  # a new process
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        app = auth_app(CookieStore(revocation=False), clock)
        get(app, "/count")
    assert "revocation" not in caplog.text
    assert user_of(app, get(app, "/login/alice").cookie()) == "alice"
    assert repr(CookieStore(revocation=False)) == "CookieStore(encrypt=True, revocation=False)"
