"""Remember-me: log in again from a long-lived token, rotated on use; a replayed token revokes all."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionware import (
    Expiry,
    MemoryStore,
    RememberMe,
    SessionMiddleware,
    SQLiteStore,
    get_session,
    user_sessions,
)
from sessionware.events import Events, SessionEvent
from sessionware.testing import FakeClock

from .conftest import OTHER_SECRET, SECRET, Reply, call

DAY = 24 * 3600
EXPIRY = Expiry(idle_timeout=1800, absolute_timeout=12 * 3600)


async def remember(request: Request) -> Response:
    get_session(request).log_in(request.path_params["user"], remember=True)
    return PlainTextResponse("ok")


async def password(request: Request) -> Response:
    get_session(request).log_in(request.path_params["user"])
    return PlainTextResponse("ok")


async def whoami(request: Request) -> Response:
    session = get_session(request)
    return JSONResponse({"user": session.user_id, "how": session.how})


async def logout(request: Request) -> Response:
    get_session(request).log_out()
    return PlainTextResponse("ok")


async def everywhere(request: Request) -> Response:
    session = get_session(request)
    assert session.user_id is not None
    await user_sessions(request).revoke_all(session.user_id)
    session.log_out()
    return PlainTextResponse("ok")


async def password_changed(request: Request) -> Response:
    return JSONResponse(await user_sessions(request).password_changed(request.path_params["user"]))


async def sensitive(request: Request) -> Response:
    get_session(request).require_recent_auth(max_age=600)  # 401 unless the password was typed lately
    return PlainTextResponse("changed")


async def confirm(request: Request) -> Response:
    get_session(request).reauthenticated()  # the app checked the password
    return PlainTextResponse("ok")


ROUTES = [
    Route("/sensitive", sensitive),
    Route("/confirm", confirm),
    Route("/password-changed/{user}", password_changed),
    Route("/remember/{user}", remember),
    Route("/password/{user}", password),
    Route("/whoami", whoami),
    Route("/logout", logout),
    Route("/everywhere", everywhere),
]


class Browser:
    """A cookie jar for the raw driver: keeps what each response sets, sends it back."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.jar: dict[str, str] = {}

    def get(self, path: str) -> Reply:
        cookie = "; ".join(f"{name}={value}" for name, value in self.jar.items()) or None
        reply = call(self.app, path, cookie=cookie)
        for header in reply.all("set-cookie"):
            pair = header.split(";", 1)[0]
            name, value = pair.split("=", 1)
            if "Max-Age=0" in header:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return reply

    def whoami(self) -> Any:
        return self.get("/whoami").json()


def build(store: Any, clock: FakeClock, events: Events | None = None, **options: Any) -> Any:
    app = Starlette(routes=ROUTES)
    secret = options.pop("secret", SECRET)
    expiry = options.pop("expiry", EXPIRY)
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=secret,
        store=store,
        clock=clock,
        expiry=expiry,
        remember=RememberMe(max_age=30 * DAY, reissue_after=7 * DAY, grace=5),
        events=events,
        **options,
    )
    return app


class Recorder:
    def __init__(self) -> None:
        self.seen: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        self.seen.append(event)


def hooks(recorder: Recorder) -> Events:
    return Events(on_log_in=recorder, on_invalid_cookie=recorder, on_remember_theft=recorder)


def test_a_remembered_browser_is_logged_in_again_when_its_session_cookie_is_gone(
    registry_store: Any, clock: FakeClock
) -> None:
    recorder = Recorder()
    browser = Browser(build(registry_store, clock, hooks(recorder)))
    reply = browser.get("/remember/alice")
    assert len(reply.all("set-cookie")) == 2
    token = browser.jar["remember"]
    assert any("Max-Age=2592000" in header for header in reply.all("set-cookie"))
    assert browser.whoami() == {"user": "alice", "how": "password"}
    del browser.jar["session"]  # the browser closed: its session cookie is gone
    clock.advance(3600)
    assert browser.whoami() == {"user": "alice", "how": "remember"}  # the app can tell
    assert browser.jar["remember"] != token  # rotated on use
    assert [(e.kind, e.reason) for e in recorder.seen] == [("log_in", "password"), ("log_in", "remember")]


def test_a_remember_me_log_in_is_no_recent_authentication_until_the_password_is_confirmed(
    registry_store: Any, clock: FakeClock
) -> None:
    """The token proves the device, not the user: sensitive changes ask for the password."""
    browser = Browser(build(registry_store, clock))
    browser.get("/remember/alice")
    assert browser.get("/sensitive").status == 200  # just typed the password
    del browser.jar["session"]
    clock.advance(60)
    assert browser.get("/sensitive").status == 401  # logged in again by the token
    assert browser.whoami() == {"user": "alice", "how": "remember"}
    assert browser.get("/confirm").status == 200
    assert browser.get("/sensitive").status == 200
    assert browser.whoami() == {"user": "alice", "how": "password"}


def test_an_expired_session_with_a_valid_token_logs_in_again_under_a_new_id(
    registry_store: Any, clock: FakeClock
) -> None:
    browser = Browser(build(registry_store, clock))
    browser.get("/remember/alice")
    old_session = browser.jar["session"]
    clock.advance(1801)  # idle timeout passed
    assert browser.whoami()["how"] == "remember"
    assert browser.jar["session"] != old_session


def test_a_replayed_token_revokes_every_session_and_token_of_the_user(
    registry_store: Any, clock: FakeClock
) -> None:
    recorder = Recorder()
    app = build(registry_store, clock, hooks(recorder))
    victim = Browser(app)
    victim.get("/remember/alice")
    stolen = victim.jar["remember"]
    other_device = Browser(app)
    other_device.get("/remember/alice")
    del victim.jar["session"]
    victim.whoami()  # the victim uses the token: rotated
    clock.advance(60)
    thief = Browser(app)
    thief.jar["remember"] = stolen
    assert thief.whoami() == {"user": None, "how": None}
    assert "remember" not in thief.jar  # its cookie expired
    assert victim.whoami()["user"] is None  # the victim's fresh session: revoked
    assert other_device.whoami()["user"] is None
    del other_device.jar["session"]
    assert other_device.whoami()["user"] is None  # its token too
    thefts = [e for e in recorder.seen if e.kind == "remember_theft"]
    assert [(e.user_id, e.reason) for e in thefts] == [("alice", "replayed")]
    assert thefts[0].count >= 3


def test_parallel_requests_within_the_grace_window_are_all_logged_in(
    registry_store: Any, clock: FakeClock
) -> None:
    app = build(registry_store, clock)
    browser = Browser(app)
    browser.get("/remember/alice")
    del browser.jar["session"]
    token = browser.jar["remember"]
    first = call(app, "/whoami", cookie=f"remember={token}")
    clock.advance(2)
    second = call(app, "/whoami", cookie=f"remember={token}")  # raced the rotation
    assert first.json()["user"] == second.json()["user"] == "alice"
    assert [h for h in second.all("set-cookie") if h.startswith("remember=")] == []  # not rotated again
    browser.jar["remember"] = next(
        h.split(";")[0].split("=", 1)[1] for h in first.all("set-cookie") if h.startswith("remember=")
    )
    browser.jar.pop("session", None)
    assert browser.whoami()["user"] == "alice"  # the new token works: no theft was declared


def test_log_out_deletes_the_token_and_expires_the_cookie(registry_store: Any, clock: FakeClock) -> None:
    recorder = Recorder()
    app = build(registry_store, clock, hooks(recorder))
    browser = Browser(app)
    browser.get("/remember/alice")
    token = browser.jar["remember"]
    reply = browser.get("/logout")
    assert any(h.startswith("remember=;") and "Max-Age=0" in h for h in reply.all("set-cookie"))
    assert call(app, "/whoami", cookie=f"remember={token}").json()["user"] is None
    assert [e.reason for e in recorder.seen if e.kind == "invalid_cookie"] == ["revoked"]


def test_log_out_everywhere_and_a_password_change_delete_every_token(
    registry_store: Any, clock: FakeClock
) -> None:
    app = build(registry_store, clock)
    laptop, phone = Browser(app), Browser(app)
    laptop.get("/remember/alice")
    phone.get("/remember/alice")
    laptop.get("/everywhere")
    del phone.jar["session"]
    assert phone.whoami()["user"] is None
    phone.get("/remember/alice")
    assert phone.get("/password-changed/alice").json() >= 2
    del phone.jar["session"]
    assert phone.whoami()["user"] is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("garbage", "malformed"),
        ("i1." + "A" * 600, "oversize"),
        ("i1.AAAA", "malformed"),
    ],
)
def test_a_bad_remember_cookie_is_ignored_with_an_event_never_a_500(
    value: str, reason: str, clock: FakeClock
) -> None:
    recorder = Recorder()
    app = build(MemoryStore(), clock, hooks(recorder))
    reply = call(app, "/whoami", cookie=f"remember={value}")
    assert reply.status == 200
    assert reply.json()["user"] is None
    assert [(e.kind, e.reason, e.cookie) for e in recorder.seen] == [("invalid_cookie", reason, "remember")]


def test_a_token_made_under_another_secret_logs_nobody_in(server_store: Any, clock: FakeClock) -> None:
    recorder = Recorder()
    other = Browser(build(server_store, clock, secret=OTHER_SECRET))
    other.get("/remember/alice")
    app = build(server_store, clock, hooks(recorder))
    assert call(app, "/whoami", cookie=f"remember={other.jar['remember']}").json()["user"] is None
    assert [e.reason for e in recorder.seen] == ["unknown key"]  # its key id names no secret here


def test_a_session_token_is_never_taken_for_a_remember_token(server_store: Any, clock: FakeClock) -> None:
    app = build(server_store, clock)
    browser = Browser(app)
    browser.get("/remember/alice")
    assert call(app, "/whoami", cookie=f"remember={browser.jar['session']}").json()["user"] is None


def test_a_remember_cookie_never_switches_the_user_of_a_live_session(
    registry_store: Any, clock: FakeClock
) -> None:
    app = build(registry_store, clock)
    alice, bob = Browser(app), Browser(app)
    alice.get("/remember/alice")
    bob.get("/password/bob")
    bob.jar["remember"] = alice.jar["remember"]
    assert bob.whoami()["user"] == "bob"
    clock.advance(8 * DAY)  # due for reissue; still bob's session (AAL1-long here would be needed)
    del alice.jar["session"]
    assert alice.whoami()["user"] == "alice"  # alice's token was left alone


def test_a_token_past_its_max_age_is_refused_as_expired(registry_store: Any, clock: FakeClock) -> None:
    recorder = Recorder()
    browser = Browser(build(registry_store, clock, hooks(recorder)))
    browser.get("/remember/alice")
    del browser.jar["session"]
    clock.advance(30 * DAY + 600)  # past max_age; the store keeps a token an hour longer, to say so
    assert browser.whoami()["user"] is None
    assert [e.reason for e in recorder.seen if e.kind == "invalid_cookie"] == ["expired"]
    assert "remember" not in browser.jar


def test_a_logged_in_browser_gets_a_fresh_token_once_its_own_is_old(
    server_store: Any, clock: FakeClock
) -> None:
    long = Expiry(idle_timeout=None, absolute_timeout=30 * DAY)
    browser = Browser(build(server_store, clock, expiry=long))
    browser.get("/remember/alice")
    token = browser.jar["remember"]
    clock.advance(DAY)
    browser.whoami()
    assert browser.jar["remember"] == token
    clock.advance(7 * DAY)
    assert browser.whoami()["user"] == "alice"
    assert browser.jar["remember"] != token  # reissued
    fresh = browser.jar["remember"]
    del browser.jar["session"]
    assert browser.whoami() == {"user": "alice", "how": "remember"}
    assert browser.jar["remember"] != fresh


def test_remember_needs_a_store_with_a_registry(clock: FakeClock) -> None:
    from sessionware import ConfigurationError, CookieStore

    with pytest.raises(ConfigurationError, match="per-user registry for remember="):
        SessionMiddleware(
            Starlette(), secret_key_base=SECRET, store=CookieStore(revocation=False), remember=RememberMe()
        )


def test_log_in_remember_without_the_option_says_what_to_add(clock: FakeClock) -> None:
    app = Starlette(routes=ROUTES)
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=MemoryStore(), clock=clock)
    with pytest.raises(Exception, match="remember=RememberMe"):
        call(app, "/remember/alice")


# -- WSGI and Flask --------------------------------------------------------------


def _wsgi_app(store: Any, clock: FakeClock) -> Any:
    from sessionware.wsgi import SessionMiddleware as WSGISessions
    from sessionware.wsgi import get_session as wsgi_session

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = wsgi_session(environ)
        if environ["PATH_INFO"] == "/remember":
            session.log_in("alice", remember=True)
        body = f"{session.user_id}:{session.how}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return WSGISessions(app, secret_key_base=SECRET, store=store, clock=clock, remember=RememberMe())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_wsgi_logs_a_remembered_browser_in_again(kind: str, clock: FakeClock, tmp_path: Any) -> None:
    from werkzeug.test import Client

    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db", clock=clock)
    client = Client(_wsgi_app(store, clock))
    client.get("/remember")
    client.delete_cookie("session")
    assert client.get("/").text == "alice:remember"


def test_flask_logs_a_remembered_browser_in_again(clock: FakeClock, tmp_path: Any) -> None:
    import flask

    from sessionware.flask import Sessionware, current_session

    app = flask.Flask(__name__)
    Sessionware(
        app,
        secret_key_base=SECRET,
        store=SQLiteStore(tmp_path / "s.db", clock=clock),
        clock=clock,
        remember=RememberMe(),
    )

    @app.get("/remember")
    def remember_view() -> str:
        current_session().log_in("alice", remember=True)
        return "ok"

    @app.get("/")
    def index() -> str:
        session = current_session()
        return f"{session.user_id}:{session.how}"

    client = app.test_client()
    client.get("/remember")
    client.delete_cookie("session")
    assert client.get("/").text == "alice:remember"
    client.delete_cookie("session")
    assert client.get("/").text == "alice:remember"  # the rotated token works too
