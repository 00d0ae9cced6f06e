"""Flask's own session semantics, where safe: tagged types, config read as Flask reads it, key fallbacks."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import flask
import pytest
from markupsafe import Markup

from sessionware import MemoryStore
from sessionware.flask import Sessionware

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
