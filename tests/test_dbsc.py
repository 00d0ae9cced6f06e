"""DBSC end to end through the ASGI middleware, the WSGI middleware and the Flask extension,
on every server-side store, with :class:`sessionware.testing.DBSCBrowser` playing the browser.

Security tests carry the SECURITY.md item they check (SW-07 log-out, SW-26 replay,
SW-37 malformed input never a 500, SW-40 atomic single use).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import (
    DBSC,
    ConfigurationError,
    CookieStore,
    MemoryStore,
    SessionMiddleware,
    SQLiteStore,
    UserSessions,
    _record,
    get_session,
)
from sessionware import wsgi as sw_wsgi
from sessionware._codec import IdCodec
from sessionware._dbsc_flow import REGISTRATION_GRACE
from sessionware._dbsc_state import FIELD, challenge_key, new_challenge
from sessionware._engine import Engine
from sessionware._loading import allow_key
from sessionware.flask import Sessionware, current_session
from sessionware.testing import DBSCBrowser, FakeClock

from .conftest import SECRET

BASE = "https://testserver"
LIFETIME = 60
ADAPTERS = ["asgi", "wsgi", "flask"]


# -- three apps with the same routes ---------------------------------------------------------


def _asgi_app(store: Any, clock: FakeClock, dbsc: DBSC) -> tuple[Any, Engine]:
    async def login(request: Request) -> Response:
        get_session(request).log_in("alice")
        return PlainTextResponse("in")

    async def whoami(request: Request) -> Response:
        return PlainTextResponse(str(get_session(request).user_id or "anonymous"))

    async def logout(request: Request) -> Response:
        get_session(request).log_out()
        return PlainTextResponse("out")

    async def write(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    async def renew(request: Request) -> Response:
        get_session(request).renew()
        return PlainTextResponse("renewed")

    routes = [
        Route("/login", login, methods=["POST"]),
        Route("/whoami", whoami),
        Route("/admin", whoami),
        Route("/logout", logout, methods=["POST"]),
        Route("/write", write, methods=["POST"]),
        Route("/renew", renew, methods=["POST"]),
    ]
    middleware = SessionMiddleware(
        Starlette(routes=routes), secret_key_base=SECRET, store=store, clock=clock, dbsc=dbsc
    )
    return middleware, middleware.engine


def _wsgi_app(store: Any, clock: FakeClock, dbsc: DBSC) -> tuple[Any, Engine]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = sw_wsgi.get_session(environ)
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/login" and method == "POST":
            session.log_in("alice")
            text = "in"
        elif path in ("/whoami", "/admin"):
            text = str(session.user_id or "anonymous")
        elif path == "/logout":
            session.log_out()
            text = "out"
        elif path == "/write":
            session["n"] = session.get("n", 0) + 1
            text = str(session["n"])
        elif path == "/renew":
            session.renew()
            text = "renewed"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [text.encode()]

    middleware = sw_wsgi.SessionMiddleware(app, secret_key_base=SECRET, store=store, clock=clock, dbsc=dbsc)
    return middleware, middleware.engine


def _flask_app(store: Any, clock: FakeClock, dbsc: DBSC) -> tuple[Any, Engine]:
    app = flask.Flask(__name__)

    @app.post("/login")
    def login() -> str:
        current_session().log_in("alice")
        return "in"

    @app.get("/whoami")
    @app.get("/admin", endpoint="admin")
    def whoami() -> str:
        return str(current_session().user_id or "anonymous")

    @app.post("/logout")
    def logout() -> str:
        current_session().log_out()
        return "out"

    @app.post("/write")
    def write() -> str:
        session = current_session()
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.post("/renew")
    def renew() -> str:
        current_session().renew()
        return "renewed"

    # CSRF checks on (the app's own routes exempt): the DBSC endpoints must answer before them.
    csrf = {"exempt": ["/login", "/logout", "/write", "/renew"]}
    extension = Sessionware(app, secret_key_base=SECRET, store=store, clock=clock, dbsc=dbsc, csrf=csrf)
    return app, extension.interface.engine(app)


@dataclass
class World:
    adapter: str
    app: Any
    engine: Engine
    store: Any
    clock: FakeClock

    def client(self) -> Any:
        """An https client of the app (Starlette's TestClient for ASGI, httpx over WSGI)."""
        if self.adapter == "asgi":
            return TestClient(self.app, base_url=BASE)
        return httpx.Client(transport=httpx.WSGITransport(app=self.app), base_url=BASE)

    @property
    def cookie(self) -> str:
        """The session cookie's name (Flask's comes from its config: ``session``)."""
        return "session" if self.adapter == "flask" else "__Host-session"

    @property
    def records(self) -> Any:
        """Where the session's record lives: the store, or a cookie store's revocation store."""
        return self.store.revocation if isinstance(self.store, CookieStore) else self.store

    def key_of(self, client: httpx.Client) -> str:
        """The key of the client's session record (a cookie session's revocation record)."""
        value = client.cookies.get(self.cookie)
        assert value is not None
        if self.engine.ids is None:
            assert self.engine.codec is not None
            key = allow_key(_record.unpack(self.engine.codec.decode(value)[0]).meta)
            assert key is not None
            return key
        session_id, _ = self.engine.ids.decode(value)
        return IdCodec.store_key(session_id)

    def record(self, client: httpx.Client) -> Any:
        return self.records.load(self.key_of(client))

    def logged_in(self, *, algorithm: str = "ES256") -> tuple[httpx.Client, DBSCBrowser, httpx.Response]:
        client = self.client()
        browser = DBSCBrowser(client, algorithm=algorithm)
        response = client.post("/login")
        assert response.status_code == 200
        return client, browser, response

    def bound(self, *, algorithm: str = "ES256") -> tuple[httpx.Client, DBSCBrowser]:
        client, browser, response = self.logged_in(algorithm=algorithm)
        registered = browser.register(response)
        assert registered.status_code == 200, registered.text
        return client, browser


def make_world(adapter: str, store: Any, clock: FakeClock, **options: Any) -> World:
    dbsc = DBSC(bound_cookie_lifetime=LIFETIME, **options)
    build: Callable[[Any, FakeClock, DBSC], tuple[Any, Engine]] = {
        "asgi": _asgi_app,
        "wsgi": _wsgi_app,
        "flask": _flask_app,
    }[adapter]
    app, engine = build(store, clock, dbsc)
    return World(adapter, app, engine, store, clock)


@pytest.fixture(params=ADAPTERS)
def world(request: pytest.FixtureRequest, registry_store: Any, clock: FakeClock) -> World:
    """Every adapter on every server-side store, and on a CookieStore with a revocation store."""
    return make_world(str(request.param), registry_store, clock)


@pytest.fixture(params=ADAPTERS)
def memory_world(request: pytest.FixtureRequest, clock: FakeClock) -> World:
    """Every adapter on a MemoryStore: for what does not depend on the store."""
    return make_world(str(request.param), MemoryStore(clock=clock), clock)


# -- registration ------------------------------------------------------------------------------


def test_the_log_in_response_offers_registration_with_a_fresh_challenge(world: World) -> None:
    _, _, response = world.logged_in()
    header = response.headers["secure-session-registration"]
    assert header.startswith('(ES256 RS256);path="/dbsc/register";challenge="')
    assert "none" not in header.lower()


def test_registering_binds_the_key_and_answers_the_session_config(world: World) -> None:
    client, browser, response = world.logged_in()
    registered = browser.register(response)
    assert registered.status_code == 200
    assert registered.headers["cache-control"] == "no-store"
    config = registered.json()
    assert config["refresh_url"] == "/dbsc/refresh"
    assert config["scope"] == {"origin": "https://testserver", "include_site": False}
    assert config["credentials"] == [
        {"type": "cookie", "name": "__Host-dbsc", "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"}
    ]
    bound = registered.headers["set-cookie"]
    assert bound.startswith("__Host-dbsc=b1.")
    assert f"Max-Age={LIFETIME}; Path=/; Secure; HttpOnly; SameSite=Lax" in bound
    assert registered.headers["secure-session-challenge"].endswith(f';id="{config["session_identifier"]}"')
    head, fields = world.record(client)
    assert FIELD in fields
    assert b'"dbsc":1' in head
    assert client.get("/whoami").text == "alice"


def test_rs256_keys_register_and_refresh_too(world: World) -> None:
    client, browser = world.bound(algorithm="RS256")
    world.clock.advance(LIFETIME + 1)
    assert client.get("/whoami").status_code == 401
    assert browser.refresh().status_code == 200
    assert client.get("/whoami").text == "alice"


def test_registration_needs_a_logged_in_session(memory_world: World) -> None:
    client = memory_world.client()
    browser = DBSCBrowser(client)
    client.post("/write")  # an anonymous session
    proof = browser.proof(new_challenge(int(memory_world.clock())), jwk=True)
    answer = client.post("/dbsc/register", headers={"Secure-Session-Response": proof})
    assert answer.status_code == 401


def test_a_bound_session_is_never_bound_again(world: World) -> None:
    client, browser, response = world.logged_in()
    assert browser.register(response).status_code == 200
    before = world.record(client)
    thief = DBSCBrowser(client)
    challenge = response.headers["secure-session-registration"].split('challenge="')[1].rstrip('"')
    again = client.post(
        "/dbsc/register", headers={"Secure-Session-Response": thief.proof(challenge, jwk=True)}
    )
    assert again.status_code == 409
    assert world.record(client) == before


def test_a_registration_challenge_is_single_use_and_bound_to_its_session(memory_world: World) -> None:
    """SW-26: a registration proof cannot be replayed, nor used by another session."""
    _victim, _, response = memory_world.logged_in()
    challenge = response.headers["secure-session-registration"].split('challenge="')[1].rstrip('"')
    other, browser, _ = memory_world.logged_in()
    foreign = other.post(
        "/dbsc/register", headers={"Secure-Session-Response": browser.proof(challenge, jwk=True)}
    )
    assert foreign.status_code == 400
    assert FIELD not in memory_world.record(other)[1]


def test_registration_over_plain_http_is_not_offered(memory_world: World) -> None:
    client = memory_world.client()
    response = client.post("http://testserver/login")
    assert response.status_code == 200
    assert "secure-session-registration" not in response.headers


# -- refresh -----------------------------------------------------------------------------------


def test_an_expired_bound_cookie_is_refused_server_side_until_the_browser_refreshes(world: World) -> None:
    client, browser = world.bound()
    world.clock.advance(LIFETIME + 1)  # the client still sends it: only the server knows
    assert client.get("/whoami").status_code == 401
    browser.challenge = None  # no pushed challenge: the 403 round trip
    first = browser._refresh_once(quoted=False)
    assert first.status_code == 403
    assert first.headers["secure-session-challenge"].endswith(f';id="{browser.session_identifier}"')
    assert browser.refresh().status_code == 200
    assert client.get("/whoami").text == "alice"


def test_a_pushed_challenge_saves_the_403_round_trip(world: World) -> None:
    _client, browser = world.bound()
    assert browser.challenge is not None
    answer = browser._refresh_once(quoted=False)
    assert answer.status_code == 200


def test_refresh_accepts_quoted_headers_as_the_spec_writes_them(memory_world: World) -> None:
    _client, browser = memory_world.bound()
    assert browser.refresh(quoted=True).status_code == 200


def test_refresh_rotates_the_bound_cookie_and_older_generations_lapse(world: World) -> None:
    client, browser = world.bound()
    first = client.cookies.get("__Host-dbsc")
    assert browser.refresh().status_code == 200
    second = client.cookies.get("__Host-dbsc")
    assert browser.refresh().status_code == 200
    third = client.cookies.get("__Host-dbsc")
    assert len({first, second, third}) == 3
    assert client.get("/whoami").text == "alice"
    stale = world.client()
    stale.cookies.set(world.cookie, client.cookies[world.cookie], domain="testserver.local")
    stale.cookies.set("__Host-dbsc", str(first), domain="testserver.local")
    assert stale.get("/whoami").status_code == 401  # two generations old
    stale.cookies.set("__Host-dbsc", str(second), domain="testserver.local")
    assert stale.get("/whoami").text == "alice"  # one behind: a request in flight during a refresh


def test_a_replayed_proof_is_refused_with_a_new_challenge(world: World) -> None:
    """SW-26: each challenge is used once."""
    client, browser = world.bound()
    challenge = browser.challenge
    assert challenge is not None
    headers = {
        "Sec-Secure-Session-Id": str(browser.session_identifier),
        "Secure-Session-Response": browser.proof(challenge),
    }
    assert client.post("/dbsc/refresh", headers=headers).status_code == 200
    before = world.record(client)
    replayed = client.post("/dbsc/refresh", headers=headers)
    assert replayed.status_code == 403
    assert "secure-session-challenge" in replayed.headers
    assert world.record(client) == before


@pytest.mark.parametrize("jti", ["not-a-challenge", "AAAA", "x" * 600])
def test_a_proof_over_a_challenge_never_issued_is_refused(memory_world: World, jti: str) -> None:
    client, browser = memory_world.bound()
    before = memory_world.record(client)
    headers = {
        "Sec-Secure-Session-Id": str(browser.session_identifier),
        "Secure-Session-Response": browser.proof(jti),
    }
    answer = client.post("/dbsc/refresh", headers=headers)
    assert answer.status_code == (400 if len(jti) > 512 else 403)
    assert memory_world.record(client) == before


def test_a_well_formed_challenge_never_issued_is_refused(memory_world: World) -> None:
    client, browser = memory_world.bound()
    forged = new_challenge(int(memory_world.clock()))
    headers = {
        "Sec-Secure-Session-Id": str(browser.session_identifier),
        "Secure-Session-Response": browser.proof(forged),
    }
    assert client.post("/dbsc/refresh", headers=headers).status_code == 403


def test_an_expired_challenge_is_refused(world: World) -> None:
    _client, browser = world.bound()
    world.clock.advance(301)  # past challenge_lifetime, whatever the store's own TTL says
    assert browser._refresh_once(quoted=False).status_code == 403


def test_another_sessions_challenge_is_refused(memory_world: World) -> None:
    client, browser = memory_world.bound()
    _other, other_browser = memory_world.bound()
    assert other_browser.challenge is not None
    headers = {
        "Sec-Secure-Session-Id": str(browser.session_identifier),
        "Secure-Session-Response": browser.proof(other_browser.challenge),
    }
    assert client.post("/dbsc/refresh", headers=headers).status_code == 403


def test_a_proof_signed_with_another_key_is_refused(world: World) -> None:
    """Only the key stored at registration verifies, even with that other key in the header."""
    client, browser = world.bound()
    assert browser.challenge is not None
    before = world.record(client)
    thief = DBSCBrowser(client)
    for proof in (thief.proof(browser.challenge), thief.proof(browser.challenge, jwk=True)):
        headers = {"Sec-Secure-Session-Id": str(browser.session_identifier), "Secure-Session-Response": proof}
        assert client.post("/dbsc/refresh", headers=headers).status_code == 400
    assert world.record(client) == before
    assert browser.refresh().status_code == 200  # the challenge was not consumed


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"alg": "none"}, "alg none"),
        ({"alg": "HS256"}, "alg HS256"),
        ({"alg": "RS256"}, "another algorithm than the key's"),
        ({"typ": "JWT"}, "wrong typ"),
        ({"typ": "dbsc+jwt", "header": {"crit": ["exp"]}}, "critical header"),
    ],
)
def test_proofs_of_the_wrong_shape_are_refused(
    memory_world: World, options: dict[str, Any], what: str
) -> None:
    client, browser = memory_world.bound()
    assert browser.challenge is not None
    before = memory_world.record(client)
    if options.get("alg") in ("HS256", "RS256"):
        token = browser.proof(browser.challenge)  # a valid ES256 proof, relabelled
        head = DBSCBrowser.proof.__globals__["_b64json"]({"alg": options["alg"], "typ": "dbsc+jwt"})
        token = head + token[token.index(".") :]
    else:
        token = browser.proof(browser.challenge, **options)
    headers = {"Sec-Secure-Session-Id": str(browser.session_identifier), "Secure-Session-Response": token}
    assert client.post("/dbsc/refresh", headers=headers).status_code == 400, what
    assert memory_world.record(client) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Secure-Session-Id": "x" * 10_000},
        {"Sec-Secure-Session-Id": "a b"},
        {"Sec-Secure-Session-Id": '"unterminated'},
        {"Sec-Secure-Session-Id": "(inner list)"},
        {"Secure-Session-Response": "a.b.c"},
        {"Secure-Session-Response": "e" * 9000},
        {"Secure-Session-Response": "eyJ.eyJ.AAAA"},
        {"Secure-Session-Response": "!!!"},
        {"Secure-Session-Response": '"not-closed'},
    ],
)
def test_malformed_and_oversize_headers_get_a_4xx_never_a_500(
    memory_world: World, headers: dict[str, str]
) -> None:
    """SW-37: bad input is a 4xx, nothing is written."""
    client, browser = memory_world.bound()
    before = memory_world.record(client)
    sent = {"Sec-Secure-Session-Id": str(browser.session_identifier), **headers}
    answer = client.post("/dbsc/refresh", headers=sent)
    assert 400 <= answer.status_code < 500
    assert answer.status_code != 403 or "Secure-Session-Response" not in headers
    assert memory_world.record(client) == before
    garbage = client.post(
        "/dbsc/register", headers={"Secure-Session-Response": headers.get("Secure-Session-Response", "x")}
    )
    assert 400 <= garbage.status_code < 500


def test_the_endpoints_take_post_only(memory_world: World) -> None:
    client, _ = memory_world.bound()
    assert client.get("/dbsc/refresh").status_code == 405
    assert client.get("/dbsc/register").status_code == 405


def test_an_unknown_session_identifier_ends_that_dbsc_session_only(world: World) -> None:
    client, browser = world.bound()
    answer = client.post("/dbsc/refresh", headers={"Sec-Secure-Session-Id": "someone-else"})
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers  # the bound cookie may be this session's
    assert client.get("/whoami").text == "alice"
    assert browser.refresh().status_code == 200


def test_refresh_without_any_session_is_a_401(memory_world: World) -> None:
    client = memory_world.client()
    assert client.post("/dbsc/refresh", headers={"Sec-Secure-Session-Id": "abc"}).status_code == 401


# -- the stolen cookie ---------------------------------------------------------------------------


def test_a_stolen_session_cookie_without_the_key_gets_nothing(world: World) -> None:
    client, browser = world.bound()
    world.clock.advance(REGISTRATION_GRACE + 1)
    thief = world.client()
    thief.cookies.set(world.cookie, client.cookies[world.cookie], domain="testserver.local")
    assert thief.get("/whoami").status_code == 401
    assert thief.post("/write").status_code == 401
    # Nor can it make itself a bound cookie: its key is not the bound one, and re-binding is refused.
    thief_browser = DBSCBrowser(thief)
    thief_browser.session_identifier, thief_browser.refresh_url = browser.session_identifier, "/dbsc/refresh"
    assert thief_browser.refresh().status_code == 400
    challenge = new_challenge(int(world.clock()))
    rebind = thief.post(
        "/dbsc/register", headers={"Secure-Session-Response": thief_browser.proof(challenge, jwk=True)}
    )
    assert rebind.status_code == 409
    assert thief.get("/whoami").status_code == 401
    assert client.get("/whoami").text == "alice"  # the owner is unaffected


def test_requests_sent_before_the_bound_cookie_arrived_are_served_for_a_moment(memory_world: World) -> None:
    """The log-in's redirect races the registration: it comes without the bound cookie."""
    client, browser = memory_world.bound()
    early = memory_world.client()
    early.cookies.set(memory_world.cookie, client.cookies[memory_world.cookie], domain="testserver.local")
    assert early.get("/whoami").text == "alice"
    early.cookies.set("__Host-dbsc", "b1.wrong", domain="testserver.local")
    assert early.get("/whoami").status_code == 401  # a wrong bound cookie: never served
    early.cookies.delete("__Host-dbsc")
    memory_world.clock.advance(REGISTRATION_GRACE + 1)
    assert early.get("/whoami").status_code == 401
    memory_world.clock.advance(-(REGISTRATION_GRACE + 1))
    assert browser.refresh().status_code == 200
    assert early.get("/whoami").status_code == 401  # refreshed: the moment is over


def test_a_stolen_pair_of_cookies_lapses_with_the_bound_cookie(world: World) -> None:
    client, browser = world.bound()
    thief = world.client()
    for name in (world.cookie, "__Host-dbsc"):
        thief.cookies.set(name, client.cookies[name], domain="testserver.local")
    assert thief.get("/whoami").text == "alice"  # within the bound cookie's short life...
    world.clock.advance(LIFETIME + 1)
    assert thief.get("/whoami").status_code == 401  # ...and not a second longer
    assert browser.refresh().status_code == 200
    assert client.get("/whoami").text == "alice"


def test_the_refusal_can_be_a_redirect(clock: FakeClock) -> None:
    world = make_world("asgi", MemoryStore(clock=clock), clock, refusal="/login")
    client, _ = world.bound()
    clock.advance(REGISTRATION_GRACE + 1)
    client.cookies.delete("__Host-dbsc")
    answer = client.get("/whoami", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def test_refusals_are_logged_with_the_reason(memory_world: World, caplog: pytest.LogCaptureFixture) -> None:
    client, browser = memory_world.bound()
    memory_world.clock.advance(REGISTRATION_GRACE + 1)
    client.cookies.delete("__Host-dbsc")
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert client.get("/whoami").status_code == 401
        thief = DBSCBrowser(client)
        assert browser.challenge is not None
        headers = {
            "Sec-Secure-Session-Id": str(browser.session_identifier),
            "Secure-Session-Response": thief.proof(browser.challenge),
        }
        client.post("/dbsc/refresh", headers=headers)
    messages = [record.getMessage() for record in caplog.records]
    assert any("no bound cookie" in m for m in messages)
    assert any("bad signature" in m for m in messages)
    assert all(thief.proof.__name__ not in m and "eyJ" not in m for m in messages)


# -- the session's life --------------------------------------------------------------------------


def test_log_out_ends_the_dbsc_session_too(world: World) -> None:
    """SW-07: the record (and the binding) is gone, the bound cookie expired, refresh a 401."""
    client, browser = world.bound()
    key = world.key_of(client)
    out = client.post("/logout")
    assert out.status_code == 200
    assert any(v.startswith("__Host-dbsc=; Max-Age=0") for v in out.headers.get_list("set-cookie"))
    assert world.records.load(key) is None
    ended = browser.refresh()
    assert ended.status_code == 401
    assert ended.headers["set-cookie"].startswith("__Host-dbsc=; Max-Age=0")


def test_writes_of_a_bound_session_keep_the_binding(world: World) -> None:
    client, browser = world.bound()
    assert client.post("/write").text == "1"
    assert client.post("/write").text == "2"
    _, fields = world.record(client)
    assert FIELD in fields
    assert browser.refresh().status_code == 200
    assert client.post("/write").text == "3"  # and the refresh kept the data


def test_the_binding_never_shows_in_the_session_data(world: World) -> None:
    client, _ = world.bound()
    client.post("/write")
    session = sw_wsgi.open_session(
        world.engine, f"{world.cookie}={client.cookies[world.cookie]}", int(world.clock()), True
    )
    assert dict(session) == {"n": 1}
    assert session._dbsc is not None


def test_a_renewed_session_is_offered_a_new_binding(world: World) -> None:
    client, browser = world.bound()
    renewed = client.post("/renew")
    assert "secure-session-registration" in renewed.headers
    assert any(v.startswith("__Host-dbsc=; Max-Age=0") for v in renewed.headers.get_list("set-cookie"))
    _, fields = world.record(client)
    assert FIELD not in fields
    assert browser.refresh().status_code == 401  # the old DBSC session ends
    assert DBSCBrowser(client).register(renewed).status_code == 200


def test_concurrent_refreshes_with_one_challenge_succeed_once(world: World) -> None:
    """SW-40: a challenge is consumed by one atomic delete, whichever store."""
    client, browser = world.bound()
    assert browser.challenge is not None
    headers = {
        "Sec-Secure-Session-Id": str(browser.session_identifier),
        "Secure-Session-Response": browser.proof(browser.challenge),
    }
    cookies = dict(client.cookies.items())
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def refresh() -> None:
        other = world.client()
        for name, value in cookies.items():
            other.cookies.set(name, value, domain="testserver.local")
        barrier.wait()
        statuses.append(other.post("/dbsc/refresh", headers=headers).status_code)

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 403, 403, 403, 403, 403]


def test_the_session_list_shows_a_device_bound_session(world: World) -> None:
    client, browser = world.bound()
    plain = world.client()
    plain.post("/login")
    users = UserSessions(world.engine, clock=world.clock)
    assert sorted(info.device_bound for info in users.list("alice")) == [False, True]
    world.clock.advance(minutes=10)  # past the touch interval: both records are touched
    assert browser.refresh().status_code == 200  # (the bound cookie expired meanwhile)
    assert client.post("/write").status_code == 200
    assert plain.post("/write").status_code == 200
    assert sorted(info.device_bound for info in users.list("alice")) == [False, True]


# -- required, and apps without DBSC -----------------------------------------------------------------


def test_required_paths_refuse_logged_in_sessions_that_are_not_bound(clock: FakeClock) -> None:
    world = make_world("wsgi", MemoryStore(clock=clock), clock, required=("/admin",))
    client, browser, response = world.logged_in()
    assert client.get("/whoami").text == "alice"
    assert client.get("/admin").status_code == 401
    assert browser.register(response).status_code == 200
    assert client.get("/admin").text == "alice"
    anonymous = world.client()
    assert anonymous.get("/admin").text == "anonymous"


def test_an_app_without_dbsc_sends_no_dbsc_headers(clock: FakeClock) -> None:
    middleware = SessionMiddleware(
        Starlette(routes=[Route("/login", _login, methods=["POST"])]),
        secret_key_base=SECRET,
        store=MemoryStore(clock=clock),
        clock=clock,
    )
    assert middleware.engine.dbsc is None
    response = TestClient(middleware, base_url=BASE).post("/login")
    assert "secure-session-registration" not in response.headers
    assert TestClient(middleware, base_url=BASE).post("/dbsc/register").status_code == 404


async def _login(request: Request) -> Response:
    get_session(request).log_in("bob")
    return PlainTextResponse("in")


# -- configuration --------------------------------------------------------------------------------


def test_dbsc_refuses_a_cookie_store_without_a_revocation_store_at_construction() -> None:
    for store in (CookieStore(), None):
        with pytest.raises(ConfigurationError, match=r"CookieStore\(revocation=SQLiteStore"):
            SessionMiddleware(Starlette(), secret_key_base=SECRET, store=store, dbsc=DBSC())
    SessionMiddleware(
        Starlette(), secret_key_base=SECRET, store=CookieStore(revocation=MemoryStore()), dbsc=DBSC()
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"bound_cookie_lifetime": 0}, "bound_cookie_lifetime"),
        ({"bound_cookie_lifetime": "600"}, "bound_cookie_lifetime"),
        ({"bound_cookie_name": "bad name"}, "bound_cookie_name"),
        ({"register_path": "dbsc"}, "register_path"),
        ({"refresh_path": "/a b"}, "refresh_path"),
        ({"register_path": "/same", "refresh_path": "/same"}, "differ"),
        ({"algorithms": ["none"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"challenge_lifetime": 1}, "challenge_lifetime"),
        ({"required": "/admin"}, "required"),
        ({"refusal": 500}, "refusal"),
        ({"refusal": "login"}, "refusal"),
    ],
)
def test_bad_options_raise_at_construction_naming_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        DBSC(**options)


def test_the_bound_cookie_name_must_differ_from_the_sessions() -> None:
    with pytest.raises(ConfigurationError, match="bound_cookie_name"):
        SessionMiddleware(
            Starlette(),
            secret_key_base=SECRET,
            store=MemoryStore(),
            cookie_name="s",
            dbsc=DBSC(bound_cookie_name="s"),
        )
    with pytest.raises(ConfigurationError, match="dbsc"):
        SessionMiddleware(Starlette(), secret_key_base=SECRET, store=MemoryStore(), dbsc="yes")  # type: ignore[arg-type]


def test_challenge_keys_live_in_the_sessions_group() -> None:
    assert challenge_key("GROUP/abc", "c1").startswith("GROUP/")
    assert challenge_key("GROUP/abc", "c1") != challenge_key("GROUP/abd", "c1")


# -- revocation, websockets, store failures ----------------------------------------------------------


def test_log_out_everywhere_ends_the_dbsc_session(world: World) -> None:
    """SW-19: revoking every session of the user deletes the binding with the record."""
    client, browser = world.bound()
    assert UserSessions(world.engine, clock=world.clock).revoke_all("alice") == 1
    assert browser.refresh().status_code == 401
    assert client.get("/whoami").text == "anonymous"  # the session is gone: nothing to bind to


def test_a_bound_sessions_websocket_without_the_bound_cookie_is_closed(clock: FakeClock) -> None:
    world = make_world("asgi", MemoryStore(clock=clock), clock)
    client, _ = world.bound()
    clock.advance(REGISTRATION_GRACE + 1)
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        messages.append(dict(message))

    headers = [(b"cookie", f"__Host-session={client.cookies['__Host-session']}".encode())]
    scope = {"type": "websocket", "scheme": "wss", "path": "/ws", "headers": headers}
    asyncio.run(world.app(scope, receive, send))
    assert messages == [{"type": "websocket.close", "code": 1008}]


class FailingDeletes(MemoryStore):
    """A MemoryStore whose deletions fail once ``failing`` is set (a store outage)."""

    failing = False

    def delete(self, key: str) -> bool:
        if self.failing:
            raise ConnectionError("store down")
        return super().delete(key)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_store_failure_during_a_refresh_is_a_503_and_the_browser_keeps_its_session(
    adapter: str, clock: FakeClock
) -> None:
    """SW-39: fail closed, with the status that tells the browser to back off, not to end."""
    store = FailingDeletes(clock=clock)
    world = make_world(adapter, store, clock)
    _client, browser = world.bound()
    store.failing = True
    answer = browser.refresh()
    assert answer.status_code == 503
    store.failing = False
    assert browser.refresh().status_code == 200


def test_the_command_line_session_list_shows_device_bound_sessions(tmp_path: Path) -> None:
    from .test_cli import run

    clock = FakeClock(start=time.time())  # the CLI reads the wall clock
    store = SQLiteStore(tmp_path / "cli.db")
    world = make_world("wsgi", store, clock)
    world.bound()
    world.client().post("/login")
    options = ["--store", f"sqlite:///{store.path}", "--user", "alice", "--secret-key-base", SECRET]
    listed = run("sessions", "list", *options, "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(info["device_bound"] for info in json.loads(listed.stdout)) == [False, True]
    lines = run("sessions", "list", *options).stdout.splitlines()
    assert lines[0].split()[-1] == "DBSC"  # the table's last column
    assert sorted(line.split()[-1] for line in lines[1:] if line.strip()) == ["-", "bound"]
