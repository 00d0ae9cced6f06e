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
from sessionware.flask import Sessionware, current_session, user_sessions
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


def lifetime_app(clock: FakeClock, store: Any, secret: str = SECRET, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(TESTING=True)
    Sessionware(app, secret_key_base=secret, store=store, clock=clock, **options)

    @app.post("/login/<kind>")
    def login(kind: str) -> str:
        current_session().log_in("alice")
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


@pytest.mark.parametrize("store_kind", ["memory", "sqlite", "cookie", "cookie+revocation"])
def test_permanent_session_lifetime_is_the_lifetime_of_permanent_sessions(
    store_kind: str, tmp_path: pathlib.Path
) -> None:
    clock = FakeClock()
    stores: dict[str, Callable[[], Any]] = {
        "memory": lambda: MemoryStore(clock=clock),
        "sqlite": lambda: SQLiteStore(str(tmp_path / "s.db"), clock=clock),
        "cookie": lambda: CookieStore(revocation=False),
        "cookie+revocation": lambda: CookieStore(revocation=MemoryStore(clock=clock)),
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
    for _ in range(2):
        clock.advance(days=1)  # idle for days: no idle timeout
        assert permanent.get("/user").json == {"user": "alice"}
    clock.advance(hours=23, minutes=28)  # 2 days 23 h 59 min after log-in
    assert permanent.get("/user").json == {"user": "alice"}
    clock.advance(minutes=1)  # 3 days after log-in, however active: the lifetime is absolute
    assert permanent.get("/user").json == {"user": None}


def test_a_non_permanent_session_that_ended_is_not_listed_nor_counted_against_the_limit() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, MemoryStore(clock=clock), max_sessions_per_user=1, on_session_limit="reject")

    @app.get("/mine")
    def mine() -> dict[str, Any]:
        listed = user_sessions().list("alice")
        return {"expires": [info.expires_at for info in listed]}

    first = app.test_client()
    first.post("/login/temporary")
    assert first.get("/mine").json == {"expires": [clock() + 30 * 60]}  # AAL2's idle deadline
    clock.advance(hours=13)  # that session is long over
    second = app.test_client()
    assert second.post("/login/permanent").status_code == 200  # not a 409: the old one does not count
    assert second.get("/mine").json == {"expires": [clock() + 31 * 86400]}  # the permanent one's


def test_a_session_made_permanent_then_not_keeps_the_right_expiry() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, MemoryStore(clock=clock))

    @app.post("/forget")
    def forget() -> str:
        flask.session.permanent = False
        return ""

    client = app.test_client()
    client.post("/login/permanent")
    clock.advance(hours=1)
    assert client.get("/user").json == {"user": "alice"}
    client.post("/forget")  # back to a browser-session cookie, and AAL2 from its start...
    clock.advance(minutes=31)
    assert client.get("/user").json == {"user": None}  # ...so its idle timeout applies


@pytest.mark.parametrize("store_kind", ["memory", "cookie"])
def test_a_non_permanent_session_keeps_the_default_absolute_timeout(store_kind: str) -> None:
    from sessionware.events import Events, SessionEvent

    clock = FakeClock()
    store = MemoryStore(clock=clock) if store_kind == "memory" else CookieStore(revocation=False)
    expired: list[SessionEvent] = []
    client = lifetime_app(clock, store, events=Events(on_expire=expired.append)).test_client()
    client.post("/login/temporary")
    for _ in range(35):  # active every 20 minutes for 11 h 40 min
        clock.advance(minutes=20)
        assert client.get("/user").json == {"user": "alice"}
    clock.advance(minutes=21)  # 12 h 1 min after log-in
    assert client.get("/user").json == {"user": None}
    if isinstance(store, MemoryStore):
        assert len(store) == 0  # the store kept it no longer than AAL2 allows
    else:  # the cookie holds its times: the engine tells which deadline ended it
        assert [(event.kind, event.reason) for event in expired] == [("expire", "absolute")]


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
    clock.advance(seconds=30)
    response = client.get("/ignored")  # the view never touches the session
    refreshed = response.headers["Set-Cookie"]
    assert refreshed.split(";", 1)[0] == issued.split(";", 1)[0]  # the same value...
    assert max_age_of(refreshed) == 31 * 86400 - 30  # ...kept until the session's end
    assert expires_of(refreshed) == clock() + 31 * 86400 - 30
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


def test_a_session_made_permanent_on_a_later_request_lives_on_with_a_revocation_store() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, CookieStore(revocation=MemoryStore(clock=clock)))

    @app.post("/remember")
    def remember() -> str:
        flask.session.permanent = True
        return ""

    @app.get("/mine")
    def mine() -> dict[str, Any]:
        return {"expires": [info.expires_at for info in user_sessions().list("alice")]}

    client = app.test_client()
    client.post("/login/temporary")
    clock.advance(minutes=5)
    client.post("/remember")  # not in the log-in request: the revocation record must follow
    assert client.get("/mine").json == {"expires": [clock() - 5 * 60 + 31 * 86400]}
    clock.advance(minutes=40)  # past AAL2's idle timeout
    assert client.get("/user").json == {"user": "alice"}


def test_log_in_keeps_session_permanent() -> None:
    clock = FakeClock()
    app = lifetime_app(clock, MemoryStore(clock=clock))

    @app.before_request
    def always_permanent() -> None:
        flask.session.permanent = True  # the common Flask idiom

    @app.post("/sign-in")
    def sign_in() -> str:
        current_session().log_in("carol")
        return ""

    cookie = app.test_client().post("/sign-in").headers["Set-Cookie"]
    assert max_age_of(cookie) == 31 * 86400


def test_a_store_whose_default_has_no_idle_timeout_keeps_none() -> None:
    from sessionware.phoenix import PhoenixCookieStore

    clock = FakeClock()
    store = PhoenixCookieStore(signing_salt="signing salt", encryption_salt="encryption salt")
    app = lifetime_app(clock, store, secret=SECRET * 2)  # AAL1: 30 days absolute, no idle timeout
    client = app.test_client()
    client.post("/login/temporary")
    clock.advance(days=2)  # idle for days: no idle timeout to end it
    assert client.get("/user").json == {"user": "alice"}
