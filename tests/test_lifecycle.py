"""The Plug lifecycle through the ASGI middleware, for every store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionware import CookieStore
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import call

App = Callable[..., ASGIApp]


def test_an_untouched_request_without_a_cookie_gets_no_set_cookie_and_no_vary(make_app: App) -> None:
    reply = call(make_app(), "/")
    assert reply.status == 200
    assert reply.set_cookie is None
    assert reply.header("vary") is None
    assert reply.header("cache-control") is None


def test_a_write_sets_the_cookie_once_and_the_next_request_reads_it(make_app: App) -> None:
    app = make_app()
    first = call(app, "/write/color/blue")
    assert len(first.all("set-cookie")) == 1
    second = call(app, "/read/color", cookie=first.cookie())
    assert second.json() == {"value": "blue"}


def test_a_read_only_request_sends_no_cookie_but_varies_on_cookie(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/write/color/blue").cookie()
    reply = call(app, "/read/color", cookie=cookie)
    assert reply.json() == {"value": "blue"}
    assert reply.set_cookie is None
    assert reply.header("vary") == "Cookie"


def test_reading_a_missing_key_of_a_new_session_still_varies_on_cookie(make_app: App) -> None:
    reply = call(make_app(), "/read/anything")
    assert reply.set_cookie is None
    assert reply.header("vary") == "Cookie"


def test_an_existing_vary_header_is_extended_and_cache_control_becomes_no_store(make_app: App) -> None:
    reply = call(make_app(), "/cached")
    assert reply.header("vary") == "Accept, Cookie"
    assert reply.header("cache-control") == "no-store"
    assert reply.set_cookie is not None


def test_a_changed_session_is_written_and_counted_across_requests(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/incr").cookie()
    for expected in (2, 3, 4):
        reply = call(app, "/incr", cookie=cookie)
        assert reply.json() == {"n": expected}
        if reply.set_cookie is not None:  # cookie stores re-issue; server stores keep the ID
            cookie = reply.cookie()


def test_in_place_edits_of_nested_values_are_persisted(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/cart/start").cookie()  # creates an empty cart
    for item in ("apple", "pear"):
        reply = call(app, f"/cart/{item}", cookie=cookie)
        if reply.set_cookie is not None:
            cookie = reply.cookie()
    assert call(app, "/read/cart", cookie=cookie).json() == {"value": ["apple", "pear"]}


def test_writing_the_same_value_again_is_not_a_change(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/write/color/blue").cookie()
    reply = call(app, "/write/color/blue", cookie=cookie)
    assert reply.set_cookie is None


def test_nothing_is_saved_when_the_response_is_a_5xx(make_app: App) -> None:
    app = make_app()
    reply = call(app, "/fail")
    assert reply.status == 500
    assert reply.set_cookie is None
    cookie = call(app, "/write/a/1").cookie()
    reply = call(app, "/fail", cookie=cookie)
    assert reply.set_cookie is None
    assert call(app, "/read/failed", cookie=cookie).json() == {"value": None}


def test_ignore_discards_the_changes_and_sends_nothing(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/write/a/1").cookie()
    reply = call(app, "/ignore-write", cookie=cookie)
    assert reply.set_cookie is None
    assert call(app, "/read/ignored", cookie=cookie).json() == {"value": None}


def test_renew_keeps_the_data_under_a_new_value_and_the_old_one_stops_working(
    make_app: App, store: Any
) -> None:
    app = make_app()
    old = call(app, "/write/color/blue").cookie()
    new = call(app, "/renew", cookie=old).cookie()
    assert new != old
    assert call(app, "/read/color", cookie=new).json() == {"value": "blue"}
    if not isinstance(store, CookieStore):  # a cookie store cannot revoke copies (documented)
        assert call(app, "/read/color", cookie=old).json() == {"value": None}


def test_drop_expires_the_cookie_with_the_attributes_it_was_set_with(make_app: App) -> None:
    app = make_app(same_site="strict", path="/", secure=True)
    set_header = call(app, "/write/a/1").set_cookie
    assert set_header is not None
    cookie = set_header.split(";", 1)[0]
    deletion = call(app, "/drop", cookie=cookie).set_cookie
    assert deletion is not None
    assert set_header.startswith("__Host-session=")  # secure=True: the prefixed name everywhere
    assert deletion.startswith("__Host-session=;")
    assert "Max-Age=0" in deletion
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in deletion
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attribute in set_header
        assert attribute in deletion


def test_drop_deletes_the_server_record(make_app: App, store: Any) -> None:
    app = make_app()
    cookie = call(app, "/write/a/1").cookie()
    call(app, "/drop", cookie=cookie)
    reply = call(app, "/read/a", cookie=cookie)
    if isinstance(store, CookieStore):
        assert reply.json() == {"value": "1"} or reply.json() == {"value": 1}  # documented replay limit
    else:
        assert reply.json() == {"value": None}


def test_writes_after_drop_are_not_saved(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/write/a/1").cookie()
    reply = call(app, "/drop-then-write", cookie=cookie)
    deletion = reply.set_cookie
    assert deletion is not None
    assert "Max-Age=0" in deletion


def test_drop_without_a_cookie_sends_nothing(make_app: App) -> None:
    assert call(make_app(), "/drop").set_cookie is None


def test_clearing_a_session_is_a_write_of_an_empty_session(make_app: App) -> None:
    app = make_app()
    cookie = call(app, "/write/a/1").cookie()
    reply = call(app, "/clear", cookie=cookie)
    if reply.set_cookie is not None:
        cookie = reply.cookie()
    assert call(app, "/info", cookie=cookie).json()["data"] == {}
    assert call(app, "/info", cookie=cookie).json()["is_new"] is False


def test_the_session_reports_its_times(make_app: App, clock: FakeClock) -> None:
    app = make_app()
    start = int(clock())
    cookie = call(app, "/write/a/1").cookie()
    clock.advance(120)
    info = call(app, "/info", cookie=cookie).json()
    assert info["is_new"] is False
    assert info["created_at"] == start
    assert info["last_active"] == start + 120  # a touch is due after 60 s
    assert info["expires_at"] == start + 120 + 30 * 60  # AAL2: 30 minutes idle


def test_secure_is_added_on_https_requests_by_default(make_app: App) -> None:
    app = make_app()
    on_http = call(app, "/write/a/1").set_cookie
    on_https = call(app, "/write/a/1", scheme="https").set_cookie
    assert on_http is not None
    assert on_https is not None
    assert "Secure" not in on_http
    assert "; Secure" in on_https


def test_websockets_read_the_session_but_cannot_write_it(make_app: App) -> None:
    from starlette.testclient import TestClient

    app = make_app()
    client = TestClient(app)
    login = client.get("/login/alice")
    assert login.status_code == 200
    with client.websocket_connect("/ws") as socket:
        assert socket.receive_json() == {"user": "alice"}
        assert socket.receive_json() == {"error": "SessionError"}


@pytest.mark.parametrize("status_path", ["/fail"])
def test_a_5xx_never_sets_a_cookie_even_for_a_new_session(make_app: App, status_path: str) -> None:
    assert call(make_app(), status_path).set_cookie is None


def test_reading_what_the_session_knows_about_itself_varies_on_cookie(make_app: App) -> None:
    reply = call(make_app(), "/info")
    assert reply.header("vary") == "Cookie"
    from sessionware import Session

    for attribute in ("is_new", "created_at", "auth_at", "last_active", "expires_at"):
        session = Session()
        getattr(session, attribute)
        assert session.accessed, attribute
