"""Flask: flask.session is a sessionware session, through Flask's own test client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask, flash, get_flashed_messages, session
from flask.json.tag import TaggedJSONSerializer

from sessionware import MemoryStore, SQLiteStore
from sessionware.flask import Sessionware, current_session, user_sessions
from sessionware.testing import FakeClock

from .conftest import SECRET
from .doubles import Recording


def make_app(store: Any = None, **options: Any) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "an old flask secret key that signed existing cookies"
    Sessionware(app, secret_key_base=SECRET, store=store, **options)

    @app.get("/")
    def home() -> Any:
        return {"counter": session.get("counter", 0), "user": current_session().user_id, "new": session.new}

    @app.post("/incr")
    def incr() -> Any:
        session["counter"] = session.get("counter", 0) + 1
        return {"counter": session["counter"]}

    @app.post("/cart/<item>")
    def cart(item: str) -> Any:
        session.setdefault("cart", []).append(item)  # nested, in place
        return {"cart": session["cart"]}

    @app.post("/login/<user>")
    def login(user: str) -> Any:
        current_session().log_in(user)
        flash(f"Welcome, {user}.")
        return flask.redirect("/flashes")

    @app.post("/logout")
    def logout() -> Any:
        current_session().log_out()
        flash("Bye.", "info")
        return flask.redirect("/flashes")

    @app.post("/clear")
    def clear() -> Any:
        session.clear()  # how Flask apps log out
        flash("Bye.")
        return flask.redirect("/flashes")

    @app.get("/flashes")
    def flashes() -> Any:
        return {"flashes": get_flashed_messages(with_categories=True)}

    @app.get("/sessions/<user>")
    def sessions(user: str) -> Any:
        return {"agents": [info.user_agent for info in user_sessions().list(user)]}

    @app.get("/legacy")
    def legacy() -> Any:
        # Flask's tagged JSON: the values' types (tuple, bytes...) as the view gets them.
        return {"data": json.loads(TaggedJSONSerializer().dumps(dict(session)))}

    return app


def test_flask_session_is_a_sessionware_session() -> None:
    client = make_app(MemoryStore()).test_client()
    assert client.get("/").json == {"counter": 0, "user": None, "new": True}
    assert client.get("/").headers.get("Set-Cookie") is None  # untouched: nothing sent
    assert client.post("/incr").json == {"counter": 1}
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.value.startswith("i1.")
    assert client.post("/incr").json == {"counter": 2}
    reply = client.get("/")
    assert reply.json == {"counter": 2, "user": None, "new": False}
    assert reply.headers.get("Vary") == "Cookie"


def test_nested_edits_persist() -> None:
    client = make_app().test_client()  # the encrypted cookie store
    client.post("/cart/apple")
    assert client.post("/cart/pear").json == {"cart": ["apple", "pear"]}


def test_log_in_renews_the_id_and_flask_flash_works(tmp_path: Path) -> None:
    client = make_app(SQLiteStore(tmp_path / "s.db")).test_client()
    client.post("/incr")
    before = client.get_cookie("session")
    assert before is not None
    reply = client.post("/login/alice", follow_redirects=True)
    assert reply.json == {"flashes": [["message", "Welcome, alice."]]}
    after = client.get_cookie("session")
    assert after is not None
    assert after.value != before.value
    assert client.get("/").get_json()["user"] == "alice"
    assert client.get("/flashes").json == {"flashes": []}  # shown once
    reply = client.post("/logout", follow_redirects=True)
    assert reply.json == {"flashes": [["info", "Bye."]]}
    assert client.get("/").get_json()["user"] is None


@pytest.mark.parametrize("kind", ["cookie", "memory", "sqlite", "cookie-revocation"])
def test_session_clear_on_a_logged_in_session_is_a_log_out(kind: str, tmp_path: Path) -> None:
    from sessionware import CookieStore

    store = {
        "cookie": None,
        "memory": MemoryStore(),
        "sqlite": SQLiteStore(tmp_path / "s.db"),
        "cookie-revocation": CookieStore(revocation=SQLiteStore(tmp_path / "r.db")),
    }[kind]
    app = make_app(store)
    client = app.test_client()
    client.post("/login/alice", follow_redirects=True)
    copy = client.get_cookie("session")
    assert copy is not None
    assert client.get("/").get_json()["user"] == "alice"
    assert client.post("/clear", follow_redirects=True).json == {"flashes": [["message", "Bye."]]}
    assert client.get("/").get_json()["user"] is None
    if kind != "cookie":  # where a log-out can revoke: the copy taken before it is dead too
        thief = app.test_client()
        thief.set_cookie("session", copy.value)
        assert thief.get("/").get_json()["user"] is None


def test_csrf_token_and_input_are_template_globals_when_csrf_is_on() -> None:
    app = Flask(__name__)
    Sessionware(app, secret_key_base=SECRET, csrf=True)

    @app.get("/form")
    def form() -> str:
        return flask.render_template_string(
            '<meta name="csrf" content="{{ csrf_token() }}"><form method="post">{{ csrf_input() }}</form>'
        )

    @app.post("/form")
    def posted() -> str:
        return "accepted"

    client = app.test_client()
    page = client.get("/form").get_data(as_text=True)
    token = page.split('content="', 1)[1].split('"', 1)[0]
    assert '<input type="hidden" name="_csrf_token" value="' in page  # markup, not escaped text
    assert client.post("/form", data={"_csrf_token": token}).get_data(as_text=True) == "accepted"
    assert client.post("/form", data={"_csrf_token": "forged"}).status_code == 403


def test_session_transaction_seeds_a_session() -> None:
    client = make_app(MemoryStore()).test_client()
    with client.session_transaction() as seeded:
        seeded["counter"] = 41
    assert client.post("/incr").json == {"counter": 42}


def test_the_registry_through_flask(tmp_path: Path) -> None:
    app = make_app(SQLiteStore(tmp_path / "s.db"))
    phone = app.test_client()
    laptop = app.test_client()
    phone.post("/login/alice", headers={"User-Agent": "Phone"})
    laptop.post("/login/alice", headers={"User-Agent": "Laptop"})
    assert sorted(laptop.get("/sessions/alice").get_json()["agents"]) == ["Laptop", "Phone"]


Flaky = Recording  # a MemoryStore whose connection can be cut


def test_a_store_that_is_down_answers_503_and_recovers() -> None:
    store = Flaky()
    client = make_app(store).test_client()
    client.post("/incr")
    store.down = True
    assert client.get("/").status_code == 503  # loading failed
    fresh = make_app(store).test_client()
    store.down = False
    fresh.get("/")
    store.down = True
    reply = fresh.post("/incr")  # saving failed
    assert reply.status_code == 503
    assert "Set-Cookie" not in reply.headers
    store.down = False
    assert client.get("/").get_json()["counter"] == 1


def test_a_store_failure_in_a_view_is_the_503_not_flasks_500() -> None:
    store = Flaky()
    client = make_app(store).test_client()
    client.post("/login/alice")
    assert len(client.get("/sessions/alice").get_json()["agents"]) == 1
    real = store.inner.user_sessions

    def unreachable(user: str) -> Any:
        raise ConnectionError("gone")

    store.inner.user_sessions = unreachable
    reply = client.get("/sessions/alice")
    assert reply.status_code == 503
    assert b"sessions cannot be loaded or saved" in reply.data
    store.inner.user_sessions = real
    assert len(client.get("/sessions/alice").get_json()["agents"]) == 1


def test_a_cookie_written_by_flasks_own_session_is_read_once_and_reissued() -> None:
    legacy_app = Flask(__name__)
    legacy_app.config["SECRET_KEY"] = "an old flask secret key that signed existing cookies"

    @legacy_app.get("/set")
    def set_session() -> str:
        session["user"] = "alice"
        session["pair"] = ("a", 1)  # Flask's tagged JSON keeps tuples
        session["raw"] = b"\x00\x01"
        return "ok"

    legacy_client = legacy_app.test_client()
    legacy_client.get("/set")
    old = legacy_client.get_cookie("session")
    assert old is not None
    assert not old.value.startswith(("e1.", "s1.", "i1."))  # really Flask's format

    client = make_app(MemoryStore()).test_client()
    client.set_cookie("session", old.value)
    reply = client.get("/legacy")
    assert reply.json == {"data": {"user": "alice", "pair": {" t": ["a", 1]}, "raw": {" b": "AAE="}}}
    upgraded = client.get_cookie("session")
    assert upgraded is not None
    assert upgraded.value.startswith("i1.")  # re-issued in sessionware's format, never the old one
    assert client.get("/legacy").json == reply.json


def test_a_forged_legacy_cookie_is_ignored() -> None:
    other = Flask(__name__)
    other.config["SECRET_KEY"] = "some other application's secret key entirely"

    @other.get("/set")
    def set_session() -> str:
        session["user"] = "admin"
        return "ok"

    forger = other.test_client()
    forger.get("/set")
    forged = forger.get_cookie("session")
    assert forged is not None
    client = make_app().test_client()
    client.set_cookie("session", forged.value)
    assert client.get("/legacy").json == {"data": {}}


def test_legacy_reading_can_be_turned_off() -> None:
    legacy_app = Flask(__name__)
    legacy_app.config["SECRET_KEY"] = "an old flask secret key that signed existing cookies"

    @legacy_app.get("/set")
    def set_session() -> str:
        session["user"] = "alice"
        return "ok"

    legacy_client = legacy_app.test_client()
    legacy_client.get("/set")
    old = legacy_client.get_cookie("session")
    assert old is not None
    client = make_app(legacy=False).test_client()
    client.set_cookie("session", old.value)
    assert client.get("/legacy").json == {"data": {}}


def test_flask_config_shapes_the_cookie() -> None:
    app = make_app(MemoryStore())
    app.config.update(SESSION_COOKIE_NAME="__Host-app", SESSION_COOKIE_SAMESITE="Strict")
    reply = app.test_client().post("/incr")
    header = reply.headers["Set-Cookie"]
    assert header.startswith("__Host-app=")
    assert "; Secure" in header
    assert "SameSite=Strict" in header
    assert "HttpOnly" in header


def test_a_clock_can_be_moved_for_expiry() -> None:
    clock = FakeClock()
    client = make_app(MemoryStore(clock=clock), clock=clock).test_client()
    client.post("/incr")
    clock.advance(31 * 60)
    assert client.get("/").json == {"counter": 0, "user": None, "new": True}


def test_a_short_flask_secret_key_alone_is_refused_with_how_to_fix_when_the_extension_is_made() -> None:
    from sessionware import ConfigurationError

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev"
    with pytest.raises(ConfigurationError, match="gen-secret"):
        Sessionware(app)


def test_options_are_checked_when_the_extension_is_made_not_at_the_first_request() -> None:
    from sessionware import ConfigurationError

    app = Flask(__name__)
    with pytest.raises(ConfigurationError, match="did you mean 'secure'"):
        Sessionware(app, secret_key_base=SECRET, cookie_secure=True)
    with pytest.raises(ConfigurationError, match="expiry"):
        Sessionware(app, secret_key_base=SECRET, expiry="forever")
    with pytest.raises(ConfigurationError, match="registry"):
        Sessionware(app, secret_key_base=SECRET, max_sessions_per_user=3)  # the cookie store has none
    late = Flask(__name__)  # a factory that sets SECRET_KEY after init_app: checked with a stand-in
    ext = Sessionware(late)
    late.config["SECRET_KEY"] = SECRET
    assert ext.interface.engine(late).keys is not None


def test_flask_flash_keeps_categories_as_tuples_and_markup_as_markup() -> None:
    from markupsafe import Markup

    app = make_app(MemoryStore())

    @app.post("/flash-html")
    def flash_html() -> str:
        flash(Markup("<em>Saved</em>"), "success")
        flash("<plain>")
        return "ok"

    @app.get("/flashes-raw")
    def flashes_raw() -> Any:
        messages: list[Any] = get_flashed_messages(with_categories=True)
        assert all(type(entry) is tuple for entry in messages)
        return {"kinds": [[category, str(message), type(message).__name__] for category, message in messages]}

    client = app.test_client()
    client.post("/flash-html")
    assert client.get("/flashes-raw").json == {
        "kinds": [["success", "<em>Saved</em>", "Markup"], ["message", "<plain>", "str"]]
    }
    assert client.get("/flashes-raw").json == {"kinds": []}


def test_session_headers_merge_with_the_apps_vary_and_cache_control() -> None:
    app = make_app(MemoryStore())

    @app.post("/cached")
    def cached() -> Any:
        session["n"] = 1
        return "ok", 200, {"Vary": "Accept-Encoding", "Cache-Control": "public, max-age=60"}

    @app.get("/read-vary")
    def read_vary() -> Any:
        return str(session.get("n")), 200, {"Vary": "Accept-Language"}

    client = app.test_client()
    reply = client.post("/cached")
    assert reply.headers.getlist("Vary") == ["Accept-Encoding, Cookie"]
    assert reply.headers.getlist("Cache-Control") == ["no-store"]  # a Set-Cookie is never cached
    assert len(reply.headers.getlist("Set-Cookie")) == 1
    reply = client.get("/read-vary")
    assert reply.headers.getlist("Vary") == ["Accept-Language, Cookie"]
    assert "Set-Cookie" not in reply.headers


def test_one_extension_serves_many_apps_each_with_its_own_config() -> None:
    import gc

    from sessionware.flask import SessionInterface

    extension = Sessionware(secret_key_base=SECRET, store=MemoryStore())
    interface = extension.interface
    assert isinstance(interface, SessionInterface)
    for name in ("first", "second", "third"):
        app = Flask(__name__)
        app.config["SESSION_COOKIE_NAME"] = name
        extension.init_app(app)

        @app.post("/w")
        def write() -> str:
            session["x"] = 1
            return "ok"

        assert app.test_client().post("/w").headers["Set-Cookie"].startswith(name + "=")
        del app, write
        gc.collect()
        assert interface._engines == {}  # forgotten with its app: an app at the same address starts afresh


def test_a_cookie_store_with_a_revocation_store_that_is_down_answers_503() -> None:
    from sessionware import CookieStore

    revocation = Flaky()
    client = make_app(CookieStore(revocation=revocation)).test_client()
    client.post("/login/alice")
    assert client.get("/").get_json()["user"] == "alice"
    revocation.down = True
    assert client.get("/").status_code == 503
    revocation.down = False
    assert client.get("/").get_json()["user"] == "alice"


def test_a_permanent_session_gets_a_cookie_that_outlives_the_browser_session() -> None:
    """Flask's session.permanent: the cookie gets a Max-Age and Expires (the session's deadline)."""
    app = Flask(__name__)
    Sessionware(app, secret_key_base=SECRET, store=MemoryStore())

    @app.post("/remember")
    def remember() -> str:
        session.permanent = True
        session["user"] = "alice"
        return "ok"

    @app.post("/forget")
    def forget() -> str:
        session["user"] = "bob"
        return "ok"

    client = app.test_client()
    remembered = client.post("/remember").headers["Set-Cookie"]
    assert "Max-Age=" in remembered
    assert "Expires=" in remembered
    max_age = int(remembered.split("Max-Age=", 1)[1].split(";", 1)[0])
    assert max_age == 31 * 24 * 3600  # PERMANENT_SESSION_LIFETIME, without an expiry option
    forgotten = app.test_client().post("/forget").headers["Set-Cookie"]
    assert "Max-Age" not in forgotten  # a browser-session cookie
    assert "Expires" not in forgotten
