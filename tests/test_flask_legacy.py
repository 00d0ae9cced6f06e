"""Switching from Flask's built-in session logs nobody out.

Every legacy cookie here is made by the real thing: a Flask app with Flask's
own SecureCookieSessionInterface (itsdangerous URLSafeTimedSerializer and
Flask's tagged JSON, keyed by SECRET_KEY). sessionware reads it once, re-issues
the session in its own format on that response, and never writes Flask's.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from markupsafe import Markup

from sessionware import CookieStore, SQLiteStore
from sessionware.flask import Sessionware

from .conftest import SECRET, unique_prefix

OLD_KEY = "the flask SECRET_KEY that signed the cookies already out there"
OURS = ("e1.", "s1.", "i1.")
WHEN = datetime.datetime(2025, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
THE_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def flask_cookie(secret_key: str = OLD_KEY, interface: Any = None, **data: Any) -> str:
    """A session cookie made by Flask's own session interface, holding ``data``."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secret_key
    if interface is not None:
        app.session_interface = interface

    @app.get("/set")
    def set_session() -> str:
        session.update(data)
        session.permanent = True
        flask.flash(Markup("<b>Saved</b>"), "success")  # pending when the switch happens
        return "ok"

    client = app.test_client()
    client.get("/set")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert not cookie.value.startswith(OURS)
    assert "." in cookie.value  # itsdangerous: payload.timestamp.signature
    return cookie.value


def sessionware_app(store: Any, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=OLD_KEY, **config)
    Sessionware(app, secret_key_base=SECRET, store=store)

    @app.get("/data")
    def data() -> Any:
        values = {key: session[key] for key in session if key not in ("_flashes", "_permanent")}
        # Flask's tagged JSON, so that the test sees each value's type as the view got it.
        return {"data": json.loads(TaggedJSONSerializer().dumps(values)), "permanent": session.permanent}

    @app.get("/flashes")
    def flashes() -> Any:
        messages: list[Any] = flask.get_flashed_messages(with_categories=True)
        return {
            "flashes": [
                [category, str(message), isinstance(message, Markup)] for category, message in messages
            ]
        }

    @app.post("/bump")
    def bump() -> Any:
        session["visits"] = session.get("visits", 0) + 1
        return {"visits": session["visits"]}

    return app


@pytest.fixture(params=["encrypted", "signed", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    kind = request.param
    if kind == "encrypted":
        yield CookieStore()
    elif kind == "signed":
        yield CookieStore(encrypt=False)
    elif kind == "sqlite":
        yield SQLiteStore(tmp_path / "s.db")
    else:
        from sessionware.stores.redis import RedisStore

        redis_store = RedisStore(request.getfixturevalue("redis_url"), prefix=unique_prefix())
        yield redis_store
        redis_store.close()


TAGGED: dict[str, Any] = {
    "user": "alice",
    "pair": ("a", 1),  # tagged " t"
    "raw": b"\x00\xff",  # tagged " b"
    "when": WHEN,  # tagged " d"
    "html": Markup("<i>hi</i>"),  # tagged " m"
    "id": THE_UUID,  # tagged " u"
    "nested": {"cart": [("apple", 2), {"deep": (b"x", WHEN)}], " t": "a dict key that looks like a tag"},
}
#: What the view sees: every value with its type (tuple, bytes, datetime, Markup, UUID) kept.
AS_JSON = json.loads(TaggedJSONSerializer().dumps(TAGGED))


def test_a_real_flask_cookie_with_tagged_values_is_read_once_and_reissued(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = flask_cookie(**TAGGED)
    decodes = 0
    original = SecureCookieSessionInterface.get_signing_serializer

    def counting(self: Any, app: Flask) -> URLSafeTimedSerializer | None:
        nonlocal decodes
        decodes += 1
        return original(self, app)

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counting)
    client = sessionware_app(store).test_client()
    client.set_cookie("session", old)

    first = client.get("/data")
    assert first.json == {"data": AS_JSON, "permanent": True}
    assert decodes == 1
    issued = first.headers.getlist("Set-Cookie")
    assert len(issued) == 1
    assert issued[0].startswith("session=" + {"encrypted": "e1.", "signed": "s1."}.get(_kind(store), "i1."))
    upgraded = client.get_cookie("session")
    assert upgraded is not None
    assert upgraded.value != old

    # The flash Flask's flash() left in the old cookie comes out once, still Markup.
    assert client.get("/flashes").json == {"flashes": [["success", "<b>Saved</b>", True]]}
    assert client.get("/flashes").json == {"flashes": []}
    assert client.post("/bump").json == {"visits": 1}
    assert client.get("/data").json == {"data": {**AS_JSON, "visits": 1}, "permanent": True}
    assert decodes == 1  # read once: every later request used sessionware's own cookie

    # Nothing sessionware sent is in Flask's format: Flask's own reader refuses it.
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.value.startswith(OURS)
    legacy_reader = original(SecureCookieSessionInterface(), _app_with_key(OLD_KEY))
    assert legacy_reader is not None
    with pytest.raises(BadSignature):
        legacy_reader.loads(cookie.value)


def _kind(store: Any) -> str:
    if isinstance(store, CookieStore):
        return "encrypted" if store.encrypt else "signed"
    return "server"


def _app_with_key(key: str) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = key
    return app


def test_once_upgraded_the_session_no_longer_needs_the_legacy_reader() -> None:
    app = sessionware_app(CookieStore())
    client = app.test_client()
    client.set_cookie("session", flask_cookie(user="alice"))
    assert client.get("/data").get_json()["data"] == {"user": "alice"}
    app.session_interface.legacy = False  # type: ignore[attr-defined]
    assert client.get("/data").get_json()["data"] == {"user": "alice"}


def test_a_replayed_copy_of_the_old_cookie_holds_only_the_legacy_data() -> None:
    client = sessionware_app(CookieStore()).test_client()
    old = flask_cookie(user="alice")
    client.set_cookie("session", old)
    client.post("/bump")
    client.set_cookie("session", old)  # a stale copy: the legacy data, not sessionware's later writes
    assert client.get("/data").get_json()["data"] == {"user": "alice"}


def test_a_cookie_signed_with_a_secret_key_fallback_is_read() -> None:
    old = flask_cookie(secret_key="a key this app has since rotated out of SECRET_KEY", user="bob")
    app = sessionware_app(CookieStore())
    app.config.update(
        SECRET_KEY="the new flask secret key after rotation, long enough",
        SECRET_KEY_FALLBACKS=["a key this app has since rotated out of SECRET_KEY"],
    )
    client = app.test_client()
    client.set_cookie("session", old)
    assert client.get("/data").get_json()["data"] == {"user": "bob"}


def test_a_cookie_signed_with_an_unknown_key_is_an_empty_session() -> None:
    client = sessionware_app(CookieStore()).test_client()
    client.set_cookie(
        "session", flask_cookie(secret_key="not this app's key at all, someone else's", user="admin")
    )
    reply = client.get("/data")
    assert reply.json == {"data": {}, "permanent": False}


def test_a_tampered_flask_cookie_is_an_empty_session() -> None:
    old = flask_cookie(user="alice")
    payload, stamp, signature = old.rsplit(".", 2)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + stamp + "." + signature
    client = sessionware_app(CookieStore()).test_client()
    client.set_cookie("session", forged)
    assert client.get("/data").get_json()["data"] == {}


def signed_days_ago(days: int) -> SecureCookieSessionInterface:
    """Flask's own session interface, with its signer's clock ``days`` in the past."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days * 86400

    class Interface(SecureCookieSessionInterface):
        def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
            serializer = super().get_signing_serializer(app)
            assert serializer is not None
            serializer.signer = Signer
            return serializer

    return Interface()


def test_a_flask_cookie_past_permanent_session_lifetime_is_refused() -> None:
    # PERMANENT_SESSION_LIFETIME defaults to 31 days, the max_age Flask itself checks.
    fresh = flask_cookie(interface=signed_days_ago(30), user="alice")
    stale = flask_cookie(interface=signed_days_ago(32), user="alice")
    client = sessionware_app(CookieStore()).test_client()
    client.set_cookie("session", fresh)
    assert client.get("/data").get_json()["data"] == {"user": "alice"}
    other = sessionware_app(CookieStore()).test_client()
    other.set_cookie("session", stale)
    assert other.get("/data").get_json()["data"] == {}


def test_a_legacy_cookie_sent_twice_is_not_trusted() -> None:
    old = flask_cookie(user="alice")
    client = sessionware_app(CookieStore()).test_client()
    reply = client.get("/data", headers={"Cookie": f"session={old}; session={old}"})
    assert reply.get_json()["data"] == {}


def test_legacy_false_leaves_a_flask_cookie_unread() -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = OLD_KEY
    Sessionware(app, secret_key_base=SECRET, legacy=False)

    @app.get("/data")
    def data() -> Any:
        return {"data": dict(session)}

    client = app.test_client()
    client.set_cookie("session", flask_cookie(user="alice"))
    assert client.get("/data").json == {"data": {}}
