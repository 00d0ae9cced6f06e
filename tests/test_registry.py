"""Log-in binding and the per-user registry, through real requests, on every server-side store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessionware import CookieStore, NotSupported, UserSessions
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import OLD_SECRET, OTHER_SECRET, SECRET, Reply, build_app, call

UA = "Mozilla/5.0 (X11; Linux x86_64) sessionware-tests"


def request(app: ASGIApp, path: str, cookie: str | None = None, *, agent: str = UA) -> Reply:
    return call(app, path, cookie=cookie, headers=[("user-agent", agent)])


def log_in(app: ASGIApp, user: str, agent: str = UA) -> str:
    return request(app, f"/auth/{user}", agent=agent).cookie()


def whoami(app: ASGIApp, cookie: str) -> Any:
    return request(app, "/whoami", cookie).json()["user"]


@pytest.fixture
def app(registry_store: Any, clock: FakeClock) -> ASGIApp:
    return build_app(registry_store, clock)


def test_sw06_log_in_issues_a_new_id_and_the_pre_login_one_dies(app: ASGIApp, registry_store: Any) -> None:
    anonymous = request(app, "/write/cart/[1]").cookie()
    logged_in = request(app, "/auth/alice", anonymous)
    new = logged_in.cookie()
    assert new != anonymous
    assert whoami(app, new) == "alice"
    assert whoami(app, anonymous) is None  # the pre-login cookie never carries the identity
    if not isinstance(registry_store, CookieStore):  # an anonymous cookie session has no record to delete
        assert request(app, "/read/cart", anonymous).json() == {"value": None}


def test_log_in_clears_pre_login_data_except_the_kept_keys(app: ASGIApp) -> None:
    cookie = request(app, "/write/cart/[1,2]").cookie()
    request(app, "/write/tracking/xyz", cookie)
    cookie = request(app, "/auth/alice?keep=cart", cookie).cookie()
    assert request(app, "/whoami", cookie).json()["data"] == {"cart": [1, 2]}


def test_log_in_restarts_the_absolute_timeout_and_records_when(registry_store: Any, clock: FakeClock) -> None:
    from sessionware import Expiry

    app = build_app(registry_store, clock, expiry=Expiry(idle_timeout=600, absolute_timeout=3600))
    cookie = request(app, "/write/a/1").cookie()
    for _ in range(5):  # the anonymous session lives 50 minutes, kept alive
        clock.advance(600 - 1)
        request(app, "/incr", cookie)
    cookie = request(app, "/auth/alice", cookie).cookie()
    assert request(app, "/whoami", cookie).json()["auth_at"] == int(clock())
    logged_in_at = int(clock())

    def active() -> Any:
        nonlocal cookie
        reply = request(app, "/whoami", cookie)
        if reply.set_cookie is not None:  # a cookie store records activity in a new cookie
            cookie = reply.cookie()
        return reply.json()["user"]

    for _ in range(7):  # active well past the pre-login session's absolute deadline
        clock.advance(500)
        assert active() == "alice"
    clock.advance(logged_in_at + 3600 - int(clock()))
    assert active() is None  # 3600 s after the log-in, whatever the activity


def test_sw20_a_listing_shows_metadata_through_opaque_handles(app: ASGIApp) -> None:
    phone = log_in(app, "alice", agent="Phone browser")
    laptop = log_in(app, "alice", agent="Laptop browser")
    log_in(app, "bob")
    reply = request(app, "/sessions/alice", laptop)
    listing = reply.json()
    assert sorted(info["user_agent"] for info in listing) == ["Laptop browser", "Phone browser"]
    assert [info["current"] for info in listing if info["user_agent"] == "Laptop browser"] == [True]
    assert {info["user_id"] for info in listing} == {"alice"}
    assert all(info["ip"] is None for info in listing)  # not recorded unless asked for
    text = json.dumps(listing)
    for cookie in (phone, laptop):
        value = cookie.split("=", 1)[1]
        assert value not in text
        assert value[3:30] not in text


def test_sw20_revoking_by_handle_ends_that_session_and_only_for_its_owner(app: ASGIApp) -> None:
    phone = log_in(app, "alice", agent="Phone")
    laptop = log_in(app, "alice", agent="Laptop")
    bob = log_in(app, "bob")
    listing = request(app, "/sessions/alice", laptop).json()
    phone_handle = next(info["handle"] for info in listing if info["user_agent"] == "Phone")
    assert request(app, f"/revoke/bob/{phone_handle}", bob).json() == {"revoked": False}
    assert whoami(app, phone) == "alice"
    assert request(app, f"/revoke/alice/{phone_handle}", laptop).json() == {"revoked": True}
    assert whoami(app, phone) is None
    assert whoami(app, laptop) == "alice"
    assert request(app, f"/revoke/alice/{phone_handle}", laptop).json() == {"revoked": False}


def test_sw18_revoking_all_other_sessions_keeps_and_renews_the_current_one(app: ASGIApp) -> None:
    a, b, c = (log_in(app, "alice", agent=name) for name in ("A", "B", "C"))
    d = log_in(app, "bob")
    reply = request(app, "/revoke-others", a)
    assert reply.json() == {"revoked": 2}
    renewed = reply.cookie()
    assert renewed != a
    assert whoami(app, renewed) == "alice"
    assert whoami(app, a) is None  # the old ID of the kept session died with the renewal
    assert whoami(app, b) is None
    assert whoami(app, c) is None
    assert whoami(app, d) == "bob"
    assert [info["user_agent"] for info in request(app, "/sessions/alice", renewed).json()] == ["A"]


def test_sw19_revoking_every_session_of_a_user(app: ASGIApp) -> None:
    cookies = [log_in(app, "alice") for _ in range(5)]
    bob = log_in(app, "bob")
    assert request(app, "/revoke-all/alice", bob).json() == {"revoked": 5}
    assert all(whoami(app, cookie) is None for cookie in cookies)
    assert whoami(app, bob) == "bob"
    again = log_in(app, "alice")  # a new log-in afterwards works normally
    assert whoami(app, again) == "alice"


def test_expired_sessions_are_not_listed(app: ASGIApp, clock: FakeClock) -> None:
    stale = log_in(app, "alice", agent="Old")
    clock.advance(31 * 60)
    fresh = log_in(app, "alice", agent="New")
    assert whoami(app, stale) is None
    assert [info["user_agent"] for info in request(app, "/sessions/alice", fresh).json()] == ["New"]


def test_integer_user_ids_round_trip(app: ASGIApp) -> None:
    cookie = log_in(app, "42")
    assert whoami(app, cookie) == 42
    listing = request(app, "/sessions/42", cookie).json()
    assert [info["user_id"] for info in listing] == [42]


def test_the_ip_is_recorded_only_when_the_app_asks_and_truncated_unless_asked_in_full(
    registry_store: Any, clock: FakeClock
) -> None:
    app = build_app(registry_store, clock, record_ip=True)
    cookie = log_in(app, "alice")
    assert [info["ip"] for info in request(app, "/sessions/alice", cookie).json()] == ["127.0.0.0/24"]
    full = build_app(registry_store, clock, record_ip="full")
    cookie = log_in(full, "bob")
    assert [info["ip"] for info in request(full, "/sessions/bob", cookie).json()] == ["127.0.0.1"]


def test_the_registry_still_finds_sessions_after_a_key_rotation(
    registry_store: Any, clock: FakeClock
) -> None:
    old_app = build_app(registry_store, clock, secret=OLD_SECRET)
    before = log_in(old_app, "alice", agent="Before")
    rotated = build_app(registry_store, clock, secret=[SECRET, OLD_SECRET])
    after = log_in(rotated, "alice", agent="After")
    agents = sorted(info["user_agent"] for info in request(rotated, "/sessions/alice", after).json())
    assert agents == ["After", "Before"]
    assert request(rotated, "/revoke-all/alice", after).json() == {"revoked": 2}
    assert whoami(rotated, before) is None


def test_sessions_re_issued_during_a_rotation_stay_listed_and_revocable_once_the_old_secret_goes(
    registry_store: Any, clock: FakeClock
) -> None:
    old_app = build_app(registry_store, clock, secret=OLD_SECRET)
    cookie = log_in(old_app, "alice", agent="Before")
    rotated = build_app(registry_store, clock, secret=[SECRET, OLD_SECRET])
    clock.advance(1)
    reply = request(rotated, "/whoami", cookie)
    assert reply.json()["user"] == "alice"
    cookie = reply.cookie()  # re-issued under the new secret
    done = build_app(registry_store, clock, secret=SECRET)  # the old secret is removed
    assert whoami(done, cookie) == "alice"
    listing = request(done, "/sessions/alice", cookie).json()
    assert [info["user_agent"] for info in listing] == ["Before"]
    assert request(done, "/revoke-all/alice", cookie).json() == {"revoked": 1}
    assert whoami(done, cookie) is None


@pytest.mark.parametrize("handle", ["%C3%A9", "x" * 32, "-" * 32, "%00", "A" * 500])
def test_sw37_a_malformed_handle_revokes_nothing_and_never_errors(app: ASGIApp, handle: str) -> None:
    cookie = log_in(app, "alice")
    reply = request(app, f"/revoke/alice/{handle}", cookie)
    assert reply.status == 200
    assert reply.json() == {"revoked": False}
    assert whoami(app, cookie) == "alice"


def test_handles_are_safe_in_urls_forms_and_command_lines(app: ASGIApp) -> None:
    cookies = [log_in(app, "alice") for _ in range(20)]
    handles = [info["handle"] for info in request(app, "/sessions/alice", cookies[0]).json()]
    assert len(set(handles)) == 20
    assert all(len(handle) == 32 and set(handle) <= set("0123456789abcdef") for handle in handles)


def test_a_cookie_store_without_revocation_keeps_no_registry_and_says_so() -> None:
    from sessionware._cookies import CookieAttributes
    from sessionware._engine import Engine
    from sessionware._expiry import AAL2

    engine = Engine(
        secret_key_base=SECRET, store=CookieStore(), cookie=CookieAttributes("session"), expiry=AAL2
    )
    with pytest.raises(NotSupported, match="registry"):
        UserSessions(engine)


def test_a_script_lists_and_revokes_a_users_sessions_from_the_store_and_the_secret(
    registry_store: Any, clock: FakeClock
) -> None:
    """No middleware needed: the store, the app's secret and its cookie name are enough."""
    app = build_app(registry_store, clock)
    for agent in ("Phone", "Laptop"):
        call(app, "/auth/alice", headers=[("user-agent", agent)])
    call(app, "/auth/bob")
    sessions = UserSessions.for_store(registry_store, secret_key_base=SECRET, clock=clock)
    assert sorted(info.user_agent or "" for info in sessions.list("alice")) == ["Laptop", "Phone"]
    assert sessions.revoke_all("alice") == 2
    assert sessions.list("alice") == []
    assert len(sessions.list("bob")) == 1
    other = UserSessions.for_store(registry_store, secret_key_base=OTHER_SECRET, clock=clock)
    assert other.list("bob") == []  # another secret files users elsewhere
