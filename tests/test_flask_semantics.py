"""Flask's own session semantics, where safe: tagged types, config read as Flask reads it, key
fallbacks, PERMANENT_SESSION_LIFETIME and SESSION_REFRESH_EACH_REQUEST."""

from __future__ import annotations

import datetime
import email.utils
import logging
import pathlib
import re
import uuid
from collections.abc import Callable
from typing import Any

import flask
import pytest
from markupsafe import Markup

from sessionware import ConfigurationError, CookieStore, MemoryStore, SQLiteStore
from sessionware.flask import Sessionware, current_session
from sessionware.testing import FakeClock

from .conftest import SECRET

KEY_0 = "the Flask SECRET_KEY number zero, long enough for sessionware"
KEY_1 = "the Flask SECRET_KEY number one, long enough for sessionware too"
WHEN = datetime.datetime(2025, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
THE_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def make_app(**options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY=KEY_0, TESTING=True)  # TESTING: a view's exception reaches the test
    Sessionware(app, **options)

    @app.post("/set")
    def set_values() -> str:
        flask.session["t"] = (1, 2, 3)
        flask.session["b"] = b"\xff"
        flask.session["m"] = Markup("<html>")
        flask.session["u"] = THE_UUID
        flask.session["d"] = WHEN
        flask.session["t_tag"] = {" t": "not-a-tuple"}
        flask.session["nested"] = {"pairs": [(1, "a")], "plain": [1]}
        flask.session["cart"] = ["apple"]
        return ""

    @app.post("/append")
    def append() -> str:
        flask.session["cart"].append("pear")  # in place: no assignment, no modified=True
        return ""

    @app.get("/check")
    def check() -> dict[str, Any]:
        s = flask.session
        return {
            "t": s["t"] == (1, 2, 3),
            "b": type(s["b"]) is bytes and s["b"] == b"\xff",
            "m": type(s["m"]) is Markup and s["m"] == Markup("<html>"),
            "u": s.get("u") == THE_UUID,
            "d": s["d"] == WHEN,
            "t_tag": s["t_tag"] == {" t": "not-a-tuple"},
            "nested": s["nested"] == {"pairs": [(1, "a")], "plain": [1]},
            "cart": s["cart"],
        }

    @app.get("/a")
    def read_a() -> dict[str, Any]:
        return {"a": flask.session.get("a")}

    @app.post("/a")
    def write_a() -> str:
        flask.session["a"] = 1
        return ""

    @app.post("/bump")
    def bump() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1  # a change on every request
        return ""

    return app


def test_tuples_bytes_markup_uuids_and_datetimes_keep_their_types_across_requests() -> None:
    client = make_app(secret_key_base=SECRET, store=MemoryStore()).test_client()
    client.post("/set")
    checked = client.get("/check").get_json()
    assert checked == dict.fromkeys(["t", "b", "m", "u", "d", "t_tag", "nested"], True) | {"cart": ["apple"]}
    client.post("/append")
    assert client.get("/check").get_json()["cart"] == ["apple", "pear"]  # JSON values stay the same object


def test_secret_key_fallbacks_are_rotated_keys_when_no_secret_key_base_is_given() -> None:
    app = make_app(store=MemoryStore())
    app.config["SECRET_KEY_FALLBACKS"] = [KEY_1]
    client = app.test_client()
    client.post("/a")
    assert client.get("/a").json == {"a": 1}
    app.secret_key = "a key nobody ever used for these sessions, also long"
    assert client.get("/a").json == {"a": None}  # neither key: the session cannot be read
    app.secret_key = KEY_1
    app.config["SECRET_KEY_FALLBACKS"] = [KEY_0]  # rotated: the old key still verifies
    assert client.get("/a").json == {"a": 1}


def test_cookie_settings_are_read_on_every_request_as_flask_reads_them() -> None:
    app = make_app(secret_key_base=SECRET)
    client = app.test_client()
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    assert "samesite=strict" in client.post("/bump").headers["Set-Cookie"].lower()
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_DOMAIN="example.com")
    cookie = client.post("/bump").headers["Set-Cookie"].lower()
    assert "samesite=lax" in cookie
    assert "domain=example.com" in cookie
    app.config.update(SESSION_COOKIE_SAMESITE=None, SESSION_COOKIE_DOMAIN=None)
    assert "samesite=lax" in client.post("/bump").headers["Set-Cookie"].lower()  # Flask's default: Lax
    app.config["SESSION_COOKIE_SAMESITE"] = "invalid"
    with pytest.raises(ValueError, match="same_site"):
        client.post("/bump")


def test_session_cookie_httponly_false_gives_a_start_up_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY=KEY_0, SESSION_COOKIE_HTTPONLY=False)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        Sessionware(app)
    assert "SESSION_COOKIE_HTTPONLY=False is not followed" in caplog.text


class CountingStore(MemoryStore):
    """A MemoryStore that counts the writes it is asked for."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.writes = 0

    def create(self, *args: Any, **kwargs: Any) -> None:
        self.writes += 1
        super().create(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> bool:
        self.writes += 1
        return super().update(*args, **kwargs)


def lifetime_app(clock: FakeClock, store: Any, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(TESTING=True)
    Sessionware(app, secret_key_base=SECRET, store=store, clock=clock, **options)

    @app.post("/login/<kind>")
    def login(kind: str) -> str:
        flask.session["user"] = "alice"
        flask.session.permanent = kind == "permanent"
        return ""

    @app.get("/user")
    def user() -> dict[str, Any]:
        return {"user": flask.session.get("user")}

    @app.get("/ignored")
    def ignored() -> str:
        return ""

    @app.post("/logout")
    def logout() -> str:
        current_session().log_out()
        return ""

    return app


def max_age_of(set_cookie: str) -> int:
    match = re.search(r"; Max-Age=(\d+)", set_cookie)
    assert match is not None, set_cookie
    return int(match.group(1))


def expires_of(set_cookie: str) -> float:
    match = re.search(r"; Expires=([^;]+)", set_cookie)
    assert match is not None, set_cookie
    return email.utils.parsedate_to_datetime(match.group(1)).timestamp()


@pytest.mark.parametrize("store_kind", ["memory", "sqlite", "cookie"])
def test_permanent_session_lifetime_is_the_lifetime_of_permanent_sessions(
    store_kind: str, tmp_path: pathlib.Path
) -> None:
    clock = FakeClock()
    stores: dict[str, Callable[[], Any]] = {
        "memory": lambda: MemoryStore(clock=clock),
        "sqlite": lambda: SQLiteStore(str(tmp_path / "s.db"), clock=clock),
        "cookie": lambda: CookieStore(revocation=False),
    }
    app = lifetime_app(clock, stores[store_kind]())
    app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(days=3)
    permanent, temporary = app.test_client(), app.test_client()
    cookie = permanent.post("/login/permanent").headers["Set-Cookie"]
    assert max_age_of(cookie) == 3 * 86400
    assert expires_of(cookie) == clock() + 3 * 86400  # Expires too, as Flask sends it
    assert "Expires" not in temporary.post("/login/temporary").headers["Set-Cookie"]

    clock.advance(minutes=31)  # past the default (AAL2) idle timeout
    assert temporary.get("/user").json == {"user": None}
    assert permanent.get("/user").json == {"user": "alice"}
    clock.advance(days=2, hours=23)  # idle for less than 3 days since the last request
    assert permanent.get("/user").json == {"user": "alice"}
    clock.advance(days=3)  # idle for 3 days
    assert permanent.get("/user").json == {"user": None}


def test_a_non_permanent_session_past_the_default_expiry_is_deleted_from_the_store() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    client = lifetime_app(clock, store).test_client()
    client.post("/login/temporary")
    assert len(store) == 1
    clock.advance(hours=12, minutes=1)  # past AAL2's absolute timeout, though active every 20 minutes...
    assert client.get("/user").json == {"user": None}
    assert len(store) == 0  # ...the record went with it, not 31 days later


def test_a_non_permanent_session_keeps_the_default_absolute_timeout() -> None:
    clock = FakeClock()
    client = lifetime_app(clock, MemoryStore(clock=clock)).test_client()
    client.post("/login/temporary")
    for _ in range(35):  # active every 20 minutes for 11 h 40 min
        clock.advance(minutes=20)
        assert client.get("/user").json == {"user": "alice"}
    clock.advance(minutes=21)  # 12 h 1 min after log-in
    assert client.get("/user").json == {"user": None}


def test_a_shorter_permanent_session_lifetime_bounds_every_session() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, MemoryStore(clock=clock))
    app.config["PERMANENT_SESSION_LIFETIME"] = 300
    client = app.test_client()
    client.post("/login/temporary")
    clock.advance(seconds=301)  # within AAL2's 30 minutes, past the app's 5
    assert client.get("/user").json == {"user": None}


def test_permanent_session_lifetime_is_read_on_every_request() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, MemoryStore(clock=clock))
    client = app.test_client()
    assert max_age_of(client.post("/login/permanent").headers["Set-Cookie"]) == 31 * 86400  # Flask's default
    app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(hours=1)
    assert max_age_of(client.post("/login/permanent").headers["Set-Cookie"]) == 3600


def test_the_expiry_option_wins_over_permanent_session_lifetime() -> None:
    clock = FakeClock()
    client = lifetime_app(clock, MemoryStore(clock=clock), expiry="aal2").test_client()
    cookie = client.post("/login/permanent").headers["Set-Cookie"]
    assert max_age_of(cookie) == 30 * 60
    assert "Expires" not in cookie  # sessionware's own cookie: Max-Age only
    clock.advance(minutes=31)
    assert client.get("/user").json == {"user": None}


@pytest.mark.parametrize("lifetime", [0, -5, datetime.timedelta(0), "31 days", True])
def test_a_bad_permanent_session_lifetime_raises_at_start_up_naming_it(lifetime: Any) -> None:
    app = flask.Flask(__name__)
    app.config["PERMANENT_SESSION_LIFETIME"] = lifetime
    with pytest.raises(ConfigurationError, match="PERMANENT_SESSION_LIFETIME"):
        Sessionware(app, secret_key_base=SECRET)


def test_session_refresh_each_request_re_sends_a_permanent_sessions_cookie_without_a_write() -> None:
    clock = FakeClock()
    store = CountingStore(clock=clock)
    app = lifetime_app(clock, store)
    client = app.test_client()
    issued = client.post("/login/permanent").headers["Set-Cookie"]
    writes = store.writes
    clock.advance(seconds=30)  # within touch_interval: nothing to record
    response = client.get("/ignored")  # the view never touches the session
    refreshed = response.headers["Set-Cookie"]
    assert refreshed.split(";", 1)[0] == issued.split(";", 1)[0]  # the same value...
    assert max_age_of(refreshed) == 31 * 86400  # ...kept for the full lifetime from now
    assert expires_of(refreshed) == clock() + 31 * 86400
    assert response.headers["Vary"] == "Cookie"
    assert response.headers["Cache-Control"] == "no-store"
    assert store.writes == writes  # nothing written to the store

    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert "Set-Cookie" not in client.get("/user").headers

    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
    temporary = app.test_client()
    temporary.post("/login/temporary")
    assert "Set-Cookie" not in temporary.get("/user").headers  # not permanent: not refreshed
    assert "Set-Cookie" not in app.test_client().get("/user").headers  # no session: nothing

    logged_out = client.post("/logout").headers.getlist("Set-Cookie")
    assert len(logged_out) == 1
    assert "Max-Age=0" in logged_out[0]  # the deletion, not a refresh
