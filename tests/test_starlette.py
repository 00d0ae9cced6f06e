"""sessionware.starlette: Starlette's SessionMiddleware arguments, sessionware underneath,
and cookies made by the real Starlette middleware kept working."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import ConfigurationError, MemoryStore, SQLiteStore
from sessionware.starlette import Session, SessionMiddleware
from sessionware.testing import FakeClock

from .conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
SHORT_KEY = "example"  # what Starlette's docs and tests use; shorter than sessionware allows


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


async def view(request: Request) -> JSONResponse:
    return JSONResponse({"session": dict(request.session)})


async def update(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse({"session": dict(request.session)})


async def login(request: Request) -> JSONResponse:
    session: Any = request.session
    session.log_in("ada")
    return JSONResponse({"user": session.user_id})


async def whoami(request: Request) -> JSONResponse:
    session: Any = request.session
    return JSONResponse({"user": session.user_id, "type": type(session).__name__})


ROUTES = [
    Route("/view", view),
    Route("/update", update, methods=["POST"]),
    Route("/login", login, methods=["POST"]),
    Route("/whoami", whoami),
]


def starlette_app(middleware: Any, **options: Any) -> Starlette:
    return Starlette(routes=ROUTES, middleware=[Middleware(middleware, **options)])


def starlette_cookie(data: dict[str, Any], secret_key: str = SHORT_KEY, **options: Any) -> str:
    """A session cookie made by Starlette's own SessionMiddleware."""
    with TestClient(starlette_app(StarletteSessionMiddleware, secret_key=secret_key, **options)) as client:
        response = client.post("/update", json=data)
    match = re.match(r"session=([^;]+);", response.headers["set-cookie"])
    assert match is not None
    return match[1]


def plant(client: TestClient, value: str) -> None:
    """Put a session cookie in the client's jar where the app's own Set-Cookie lands."""
    client.cookies.set("session", value, domain="testserver.local")


def sessionware_client(clock: FakeClock | None = None, **options: Any) -> TestClient:
    options.setdefault("secret_key", SHORT_KEY)
    if clock is not None:
        options["clock"] = clock
    return TestClient(starlette_app(SessionMiddleware, **options))


# -- keeping users logged in across the switch -------------------------------------


@pytest.mark.parametrize("secret_key", [SHORT_KEY, SECRET])
def test_a_cookie_starlette_wrote_is_read_and_reissued_in_sessionwares_format(secret_key: str) -> None:
    old = starlette_cookie({"user": "ada", "cart": [1, 2]}, secret_key)
    client = sessionware_client(secret_key=secret_key)
    plant(client, old)
    response = client.get("/view")
    assert response.json() == {"session": {"user": "ada", "cart": [1, 2]}}
    new = client.cookies.get("session")
    assert new is not None
    assert new != old
    assert new.startswith("e1.")  # encrypted, sessionware's format
    assert "Max-Age=1209600" in response.headers["set-cookie"]
    # From now on the new cookie carries the session, and nothing rewrites it.
    response = client.get("/view")
    assert response.json() == {"session": {"user": "ada", "cart": [1, 2]}}
    assert "set-cookie" not in response.headers


def test_the_old_format_is_never_written() -> None:
    client = sessionware_client()
    plant(client, starlette_cookie({"n": 1}))
    client.get("/view")
    client.post("/update", json={"n": 2})
    value = client.cookies.get("session")
    assert value is not None
    assert value.startswith("e1.")
    # Starlette's own middleware cannot read it: the format really changed.
    with TestClient(starlette_app(StarletteSessionMiddleware, secret_key=SHORT_KEY)) as old_client:
        plant(old_client, value)
        assert old_client.get("/view").json() == {"session": {}}


def test_a_starlette_cookie_under_another_secret_is_an_empty_session() -> None:
    client = sessionware_client()
    plant(client, starlette_cookie({"user": "mallory"}, "some other secret"))
    response = client.get("/view")
    assert response.json() == {"session": {}}
    assert "set-cookie" not in response.headers


def test_a_tampered_starlette_cookie_is_an_empty_session() -> None:
    old = starlette_cookie({"user": "ada"})
    payload, timestamp, signature = old.split(".")
    forged = payload.replace(payload[:4], "eyJh") + "." + timestamp + "." + signature[::-1]
    for value in (forged, old[:-3], old + "x", "invalid", ".", "..", old.replace(".", "", 1)):
        client = sessionware_client()
        plant(client, value)
        assert client.get("/view").json() == {"session": {}}, value


def test_a_starlette_cookie_older_than_max_age_is_refused() -> None:
    import time

    import itsdangerous

    class SignedEarlier(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 100

    fresh = starlette_cookie({"user": "ada"})
    payload = fresh.split(".")[0]
    aged = SignedEarlier(SHORT_KEY).sign(payload).decode()
    for value, max_age, expected in (
        (fresh, 50, {"user": "ada"}),
        (aged, 200, {"user": "ada"}),
        (aged, 50, {}),
        (fresh, -1, {}),
    ):
        client = sessionware_client(max_age=max_age)
        plant(client, value)
        assert client.get("/view").json() == {"session": expected}, (max_age, value)


def test_a_starlette_cookie_that_is_not_a_dict_is_refused() -> None:
    import base64
    import json

    import itsdangerous

    signer = itsdangerous.TimestampSigner(SHORT_KEY)
    value = signer.sign(base64.b64encode(json.dumps([1, 2]).encode())).decode()
    client = sessionware_client()
    plant(client, value)
    assert client.get("/view").json() == {"session": {}}


def test_legacy_false_ignores_starlette_cookies() -> None:
    client = sessionware_client(legacy=False)
    plant(client, starlette_cookie({"user": "ada"}))
    assert client.get("/view").json() == {"session": {}}


def test_a_starlette_session_survives_into_a_server_side_store(tmp_path: Path) -> None:
    client = sessionware_client(store=SQLiteStore(tmp_path / "s.db"))
    plant(client, starlette_cookie({"user": "ada"}))
    assert client.get("/view").json() == {"session": {"user": "ada"}}
    value = client.cookies.get("session")
    assert value is not None
    assert value.startswith("i1.")
    assert client.get("/view").json() == {"session": {"user": "ada"}}


# -- Starlette's arguments and defaults ----------------------------------------------


def test_set_cookie_is_spelled_as_starlette_spells_it() -> None:
    client = sessionware_client()
    header = client.post("/update", json={"a": 1}).headers["set-cookie"]
    assert re.fullmatch(
        r"session=e1\.[A-Za-z0-9_-]+; path=/; Max-Age=1209600; httponly; samesite=lax", header
    )


def test_every_starlette_option_reaches_the_cookie() -> None:
    client = sessionware_client(
        session_cookie="sid",
        max_age=600,
        path="/app",
        same_site="none",
        https_only=True,
        domain="example.com",
        partitioned=True,
    )
    client.base_url = client.base_url.copy_with(scheme="https")
    header = client.post("/update", json={"a": 1}).headers["set-cookie"]
    assert header.startswith("sid=e1.")
    assert header.endswith(
        "; path=/app; Max-Age=600; httponly; samesite=none; secure; domain=example.com; partitioned"
    )


def test_https_only_false_still_marks_the_cookie_secure_on_https() -> None:
    client = TestClient(starlette_app(SessionMiddleware, secret_key=SHORT_KEY), base_url="https://testserver")
    assert "; secure" in client.post("/update", json={"a": 1}).headers["set-cookie"]
    client = sessionware_client()
    assert "secure" not in client.post("/update", json={"a": 1}).headers["set-cookie"]


def test_max_age_none_makes_a_browser_session_cookie() -> None:
    clock = FakeClock()
    client = sessionware_client(clock, max_age=None)
    assert "Max-Age" not in client.post("/update", json={"a": 1}).headers["set-cookie"]
    clock.advance(400 * 24 * 3600)
    assert client.get("/view").json() == {"session": {"a": 1}}


def test_max_age_is_an_idle_timeout_enforced_by_the_server() -> None:
    clock = FakeClock()
    client = sessionware_client(clock, max_age=3600)
    client.post("/update", json={"a": 1})
    cookie = client.cookies.get("session")
    clock.advance(3000)
    assert client.get("/view").json() == {"session": {"a": 1}}  # activity slides the deadline
    clock.advance(3000)
    assert client.get("/view").json() == {"session": {"a": 1}}
    # The first cookie, replayed after its hour, is refused whatever the browser kept.
    replay = sessionware_client(clock, max_age=3600)
    plant(replay, str(cookie))
    assert replay.get("/view").json() == {"session": {}}
    clock.advance(3600)
    assert client.get("/view").json() == {"session": {}}


def test_max_age_zero_or_less_lets_no_session_back_in() -> None:
    for max_age in (0, -1):
        client = sessionware_client(max_age=max_age)
        header = client.post("/update", json={"a": 1}).headers["set-cookie"]
        assert f"; Max-Age={max_age}; " in header
        value = re.match(r"session=([^;]*);", header)
        assert value is not None
        replay = sessionware_client(max_age=max_age)
        plant(replay, value[1])
        assert replay.get("/view").json() == {"session": {}}


def test_an_explicit_expiry_overrides_max_age() -> None:
    clock = FakeClock()
    client = sessionware_client(clock, expiry="aal2")
    client.post("/update", json={"a": 1})
    for _ in range(35):  # 11h40m in steps under the 30-minute idle timeout
        clock.advance(20 * 60)
        assert client.get("/view").json() == {"session": {"a": 1}}
    clock.advance(20 * 60)
    assert client.get("/view").json() == {"session": {}}  # 12 hours absolute, whatever the activity


def test_a_starlette_secret_object_is_accepted() -> None:
    client = sessionware_client(secret_key=Secret(SHORT_KEY))
    plant(client, starlette_cookie({"a": 1}))
    assert client.get("/view").json() == {"session": {"a": 1}}


def test_a_short_secret_works_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        SessionMiddleware(bare_app, secret_key="example")
    assert "gen-secret" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        SessionMiddleware(bare_app, secret_key=SECRET)
    assert "secret_key" not in caplog.text


def test_a_long_secret_is_used_as_is_so_moving_on_to_the_main_middleware_keeps_users() -> None:
    import sessionware

    client = sessionware_client(secret_key=SECRET)
    client.post("/update", json={"a": 1})
    app = Starlette(
        routes=ROUTES, middleware=[Middleware(sessionware.SessionMiddleware, secret_key_base=SECRET)]
    )
    later = TestClient(app)
    plant(later, str(client.cookies.get("session")))
    assert later.get("/view").json() == {"session": {"a": 1}}


def test_a_short_secret_does_not_key_cookies_directly() -> None:
    one = sessionware_client(secret_key="example")
    one.post("/update", json={"a": 1})
    other = sessionware_client(secret_key="examplf")
    plant(other, str(one.cookies.get("session")))
    assert other.get("/view").json() == {"session": {}}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"secret_key": ""}, "secret_key"),
        ({"max_age": "14d"}, "max_age"),
        ({"max_age": 1.5}, "max_age"),
        ({"https_only": "yes"}, "https_only"),
        ({"same_site": "none"}, "same_site"),
        ({"partitioned": True}, "partitioned"),
        ({"same_site": "loose"}, "same_site"),
        ({"session_cookie": "a b"}, "cookie_name"),
    ],
)
def test_misconfiguration_raises_at_construction(options: dict[str, Any], named: str) -> None:
    options.setdefault("secret_key", SHORT_KEY)
    with pytest.raises(ConfigurationError, match=named):
        SessionMiddleware(bare_app, **options)


# -- the session is sessionware's, with Starlette's flags ----------------------------


def test_request_session_is_a_sessionware_session_with_log_in() -> None:
    client = sessionware_client(store=MemoryStore())
    client.post("/update", json={"a": 1})
    before = client.cookies.get("session")
    assert client.post("/login").json() == {"user": "ada"}
    assert client.cookies.get("session") != before  # renewed at log-in
    assert client.get("/whoami").json() == {"user": "ada", "type": "Session"}


def flags(session: Session) -> tuple[bool, bool]:
    return session.modified, session.accessed


def test_starlette_flags_follow_starlettes_rules() -> None:
    session = Session({"a": "1", "nested": [1]})
    assert flags(session) == (False, False)
    assert session.pop("missing", None) is None
    assert flags(session) == (False, False)
    with pytest.raises(KeyError):
        session.pop("missing")
    assert session.setdefault("a", "2") == "1"
    assert flags(session) == (False, True)
    session.mark_accessed()
    assert flags(session) == (False, True)
    session.setdefault("b", "2")
    assert flags(session) == (True, True)
    fresh = Session({"a": "1"})
    fresh.mark_modified()
    assert flags(fresh) == (True, True)
    popped = Session({"a": "1"})
    assert popped.pop("a") == "1"
    assert flags(popped) == (True, True)


def test_vary_cookie_only_when_the_session_was_touched() -> None:
    async def untouched(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(
        routes=[*ROUTES, Route("/untouched", untouched)],
        middleware=[Middleware(SessionMiddleware, secret_key=SHORT_KEY)],
    )
    client = TestClient(app)
    client.post("/update", json={"a": 1})
    assert client.get("/view").headers["vary"] == "Cookie"
    assert "vary" not in client.get("/untouched").headers


# -- Starlette's own test module, unchanged but for the import ------------------------


def test_starlettes_own_session_tests_pass_against_the_drop_in() -> None:
    script = ROOT / "scripts" / "upstream_starlette.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        [str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = re.findall(r"== .* against (\w+)'s SessionMiddleware\n[^=]*?(\d+) passed", result.stdout)
    assert [name for name, _ in runs] == ["starlette", "sessionware"], result.stdout
    assert runs[0][1] == runs[1][1], result.stdout  # every test Starlette's middleware passes
    assert int(runs[1][1]) >= 29, result.stdout
    assert "failed" not in result.stdout, result.stdout
    assert "error" not in result.stdout.lower(), result.stdout
