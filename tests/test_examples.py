"""The framework examples under examples/, each driven through its framework's own test client.

Every example does the same things -- a counter kept in the session, log-in and log-out, a
CSRF-protected form, a flash message -- so :class:`ExampleContract` states them once and
each framework's class supplies a :class:`Browser` over its own test client (Starlette's,
FastAPI's and Litestar's ``TestClient``, Quart's ``test_client()``, Flask's
``test_client()``). Websocket tests live in the classes of the frameworks that have one.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from .conftest import SECRET

USER, PASSWORD = "alice", "wonderland"


@dataclass
class Page:
    status: int
    text: str

    def find(self, element_id: str) -> str | None:
        match = re.search(rf'id="{element_id}">([^<]*)<', self.text)
        return None if match is None else match.group(1)

    @property
    def counter(self) -> int:
        found = self.find("counter")
        assert found is not None, f"no counter on the page:\n{self.text}"
        return int(found)

    @property
    def user(self) -> str | None:
        return self.find("user")

    @property
    def token(self) -> str:
        match = re.search(r'name="_csrf_token" value="([^"]+)"', self.text)
        assert match is not None, f"no CSRF token on the page:\n{self.text}"
        return match.group(1)


class Browser(Protocol):
    """One client with its own cookie jar; ``post`` follows the redirect, as a browser does."""

    def get(self, path: str) -> Page: ...
    def post(self, path: str, fields: dict[str, str]) -> Page: ...
    def cookie(self) -> str | None:
        """The session cookie's value in the jar, if any."""
        ...

    def set_cookie(self, value: str) -> None: ...


class ExampleContract:
    """What every example does. Subclasses provide a ``make_browser`` fixture: a function that
    returns a fresh Browser (its own cookie jar) on the same app at each call."""

    @pytest.fixture
    def browser(self, make_browser: Callable[[], Browser]) -> Browser:
        return make_browser()

    def log_in(self, browser: Browser, password: str = PASSWORD) -> Page:
        page = browser.get("/")
        return browser.post("/login", {"username": USER, "password": password, "_csrf_token": page.token})

    def test_a_new_visitor_sees_the_log_in_form_and_a_zero_counter(self, browser: Browser) -> None:
        page = browser.get("/")
        assert page.status == 200
        assert page.user is None
        assert page.counter == 0
        assert 'action="/login"' in page.text

    def test_the_counter_increments_and_persists_across_requests(self, browser: Browser) -> None:
        page = browser.get("/")
        for expected in (1, 2, 3):
            page = browser.post("/counter", {"_csrf_token": page.token})
            assert page.status == 200
            assert page.counter == expected
        assert browser.get("/").counter == 3

    def test_log_in_shows_the_user_and_a_welcome_flash_once(self, browser: Browser) -> None:
        page = self.log_in(browser)
        assert page.status == 200
        assert page.user == USER
        assert page.find("flash-info") == f"Welcome, {USER}."
        again = browser.get("/")
        assert again.user == USER
        assert again.find("flash-info") is None  # shown once

    def test_a_wrong_password_flashes_an_error_and_logs_nobody_in(self, browser: Browser) -> None:
        page = self.log_in(browser, password="guess")
        assert page.user is None
        assert page.find("flash-error") == "Wrong user name or password."
        assert browser.get("/").find("flash-error") is None

    def test_log_in_renews_the_session_id_and_keeps_the_counter(
        self, browser: Browser, make_browser: Callable[[], Browser]
    ) -> None:
        page = browser.get("/")
        browser.post("/counter", {"_csrf_token": page.token})
        before = browser.cookie()
        assert before is not None
        planted = make_browser()  # an attacker who planted (or knows) the pre-log-in cookie
        planted.set_cookie(before)
        assert planted.get("/").counter == 1  # the cookie works for them, so far
        page = self.log_in(browser)
        after = browser.cookie()
        assert after is not None
        assert after != before
        assert page.counter == 1  # kept by log_in(..., keep=["counter"])
        assert planted.get("/").user is None  # ... but does not follow the victim into the log-in

    def test_log_out_drops_the_session_and_a_copy_of_the_cookie(
        self, browser: Browser, make_browser: Callable[[], Browser]
    ) -> None:
        page = self.log_in(browser)
        page = browser.post("/counter", {"_csrf_token": page.token})
        assert page.counter == 1
        copied = browser.cookie()
        assert copied is not None
        stolen = make_browser()  # a copy of the logged-in cookie, taken before log-out
        stolen.set_cookie(copied)
        assert stolen.get("/").user == USER  # it works, so far
        page = browser.post("/logout", {"_csrf_token": page.token})
        assert page.user is None
        assert page.counter == 0
        assert page.find("flash-info") == "You are logged out."
        page = stolen.get("/")
        assert page.user is None
        assert page.counter == 0

    def test_a_form_without_a_csrf_token_is_refused(self, browser: Browser) -> None:
        page = browser.get("/")
        refused = browser.post("/counter", {})
        assert refused.status == 403
        assert "CSRF" in refused.text
        assert browser.post("/counter", {"_csrf_token": "not-a-token"}).status == 403
        assert browser.get("/").counter == 0
        assert browser.post("/counter", {"_csrf_token": page.token}).counter == 1

    def test_log_in_without_a_token_is_refused(self, browser: Browser) -> None:
        """Login CSRF: a forged log-in form (no token) does not log the victim in."""
        browser.get("/")
        refused = browser.post("/login", {"username": USER, "password": PASSWORD})
        assert refused.status == 403
        assert browser.get("/").user is None

    def test_a_token_from_before_log_in_is_refused_after_it(self, browser: Browser) -> None:
        """log_in replaces the CSRF secret: tokens made for the anonymous session stop working."""
        old = browser.get("/").token
        self.log_in(browser)
        assert browser.post("/counter", {"_csrf_token": old}).status == 403

    def test_another_browsers_token_is_refused(
        self, browser: Browser, make_browser: Callable[[], Browser]
    ) -> None:
        other = make_browser().get("/").token
        browser.get("/")
        assert browser.post("/counter", {"_csrf_token": other}).status == 403


# -- Starlette -----------------------------------------------------------------------


class HttpxBrowser:
    """Starlette's, FastAPI's and Litestar's test clients are all httpx clients."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str) -> Page:
        reply = self.client.get(path)
        return Page(reply.status_code, reply.text)

    def post(self, path: str, fields: dict[str, str]) -> Page:
        reply = self.client.post(path, data=fields, follow_redirects=True)
        return Page(reply.status_code, reply.text)

    def cookie(self) -> str | None:
        value: str | None = self.client.cookies.get("session")
        return value

    def set_cookie(self, value: str) -> None:
        self.client.cookies.set("session", value)


class TestStarlette(ExampleContract):
    @pytest.fixture
    def make_browser(self, tmp_path: Path) -> Iterator[Callable[[], Browser]]:
        from starlette.testclient import TestClient

        from examples.starlette_app.app import create_app

        app = create_app(secret_key_base=SECRET, database=tmp_path / "sessions.db")
        with ExitStack() as clients:
            yield lambda: HttpxBrowser(clients.enter_context(TestClient(app)))

    def test_the_websocket_greets_the_logged_in_user(self, tmp_path: Path) -> None:
        from starlette.testclient import TestClient

        from examples.starlette_app.app import create_app

        with TestClient(create_app(secret_key_base=SECRET, database=tmp_path / "s.db")) as client:
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == "Hello, stranger!"
            self.log_in(HttpxBrowser(client))
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == f"Hello, {USER}!"


# -- FastAPI -------------------------------------------------------------------------


class TestFastAPI(ExampleContract):
    @pytest.fixture
    def make_browser(self, tmp_path: Path) -> Iterator[Callable[[], Browser]]:
        from fastapi.testclient import TestClient

        from examples.fastapi_app.app import create_app

        app = create_app(secret_key_base=SECRET, database=tmp_path / "revocations.db")
        with ExitStack() as clients:
            yield lambda: HttpxBrowser(clients.enter_context(TestClient(app)))

    def test_the_websocket_greets_the_logged_in_user(self, tmp_path: Path) -> None:
        from fastapi.testclient import TestClient

        from examples.fastapi_app.app import create_app

        with TestClient(create_app(secret_key_base=SECRET, database=tmp_path / "r.db")) as client:
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == "Hello, stranger!"
            self.log_in(HttpxBrowser(client))
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == f"Hello, {USER}!"

    def test_the_json_endpoint_reads_typed_session_values(self, tmp_path: Path) -> None:
        from fastapi.testclient import TestClient

        from examples.fastapi_app.app import create_app

        with TestClient(create_app(secret_key_base=SECRET, database=tmp_path / "r.db")) as client:
            assert client.get("/api/me").json() == {"user": None, "counter": 0}
            browser = HttpxBrowser(client)
            page = self.log_in(browser)
            browser.post("/counter", {"_csrf_token": page.token})
            assert client.get("/api/me").json() == {"user": USER, "counter": 1}


# -- Litestar ------------------------------------------------------------------------


class TestLitestar(ExampleContract):
    @pytest.fixture
    def make_browser(self, tmp_path: Path) -> Iterator[Callable[[], Browser]]:
        from litestar.testing import TestClient

        from examples.litestar_app.app import create_app

        def make() -> Browser:
            # An app per browser (the same secret and database, like two workers): Litestar
            # runs the app's lifespan once per test client, and two at once on one app leak.
            app = create_app(secret_key_base=SECRET, database=tmp_path / "sessions.db")
            return HttpxBrowser(clients.enter_context(TestClient(app)))

        with ExitStack() as clients:
            yield make

    def test_the_websocket_greets_the_logged_in_user(self, tmp_path: Path) -> None:
        from litestar.testing import TestClient

        from examples.litestar_app.app import create_app

        with TestClient(create_app(secret_key_base=SECRET, database=tmp_path / "s.db")) as client:
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == "Hello, stranger!"
            self.log_in(HttpxBrowser(client))
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == f"Hello, {USER}!"


# -- Quart ---------------------------------------------------------------------------


class QuartBrowser:
    """Quart's test client is async: each call runs on the test's own event loop."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def get(self, path: str) -> Page:
        reply = self.loop.run_until_complete(self.client.get(path))
        return Page(reply.status_code, self.loop.run_until_complete(reply.get_data(as_text=True)))

    def post(self, path: str, fields: dict[str, str]) -> Page:
        reply = self.loop.run_until_complete(self.client.post(path, form=fields, follow_redirects=True))
        return Page(reply.status_code, self.loop.run_until_complete(reply.get_data(as_text=True)))

    def cookie(self) -> str | None:
        return next((cookie.value for cookie in self.client.cookie_jar if cookie.name == "session"), None)

    def set_cookie(self, value: str) -> None:
        self.client.set_cookie("localhost", "session", value)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class TestQuart(ExampleContract):
    @pytest.fixture
    def make_browser(self, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> Callable[[], Browser]:
        from examples.quart_app.app import create_app

        app = create_app(secret_key_base=SECRET, database=tmp_path / "revocations.db")
        return lambda: QuartBrowser(app.test_client(), loop)

    def test_the_websocket_greets_the_logged_in_user(
        self, tmp_path: Path, loop: asyncio.AbstractEventLoop
    ) -> None:
        from examples.quart_app.app import create_app

        client = create_app(secret_key_base=SECRET, database=tmp_path / "r.db").test_client()

        async def greeting() -> Any:
            async with client.websocket("/ws") as websocket:
                return await websocket.receive()

        assert loop.run_until_complete(greeting()) == "Hello, stranger!"
        self.log_in(QuartBrowser(client, loop))
        assert loop.run_until_complete(greeting()) == f"Hello, {USER}!"


# -- Flask ---------------------------------------------------------------------------


class FlaskBrowser:
    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str) -> Page:
        reply = self.client.get(path)
        return Page(reply.status_code, reply.get_data(as_text=True))

    def post(self, path: str, fields: dict[str, str]) -> Page:
        reply = self.client.post(path, data=fields, follow_redirects=True)
        return Page(reply.status_code, reply.get_data(as_text=True))

    def cookie(self) -> str | None:
        cookie = self.client.get_cookie("session")
        return None if cookie is None else str(cookie.value)

    def set_cookie(self, value: str) -> None:
        self.client.set_cookie("session", value)


class TestFlask(ExampleContract):
    @pytest.fixture
    def make_browser(self, tmp_path: Path) -> Callable[[], Browser]:
        from examples.flask_app.app import create_app

        app = create_app(secret_key_base=SECRET, database=tmp_path / "sessions.db")
        return lambda: FlaskBrowser(app.test_client())

    def test_the_token_may_come_in_a_header(self, browser: Browser) -> None:
        """The before_request check also takes the token from an X-CSRF-Token header (for fetch())."""
        assert isinstance(browser, FlaskBrowser)
        token = browser.get("/").token
        reply = browser.client.post("/counter", headers={"X-CSRF-Token": token}, follow_redirects=True)
        assert reply.status_code == 200
        assert Page(200, reply.get_data(as_text=True)).counter == 1
        assert browser.client.post("/counter", headers={"X-CSRF-Token": "forged"}).status_code == 403


# -- sessionware.litestar, beyond the example ---------------------------------------------


class TestLitestarPlugin:
    """SessionwarePlugin: Litestar's own session API works on the sessionware session."""

    def make_app(self, **options: Any) -> Any:
        from litestar import Litestar, MediaType, Request, Response, WebSocket, get, post, websocket
        from litestar.params import FromPath, JSONBody

        from sessionware import CSRFError, MemoryStore, ReauthenticationRequired, StoreUnavailable
        from sessionware.csrf import verify_csrf_token
        from sessionware.litestar import SessionDep, SessionwarePlugin

        @get("/")
        async def read(request: Request[Any, Any, Any], session: SessionDep) -> dict[str, Any]:
            return {"same": session is request.session, "type": type(session).__name__, "data": dict(session)}

        @post("/put/{key:str}/{value:int}", status_code=200)
        async def put(request: Request[Any, Any, Any], key: FromPath[str], value: FromPath[int]) -> None:
            request.session[key] = value

        @post("/set", status_code=200)
        async def set_session(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> None:
            request.set_session(data)

        @post("/set-model", status_code=200)
        async def set_model(request: Request[Any, Any, Any]) -> None:
            request.set_session(Cart(items=["apple"], owner="alice"))

        @post("/clear", status_code=200)
        async def clear(request: Request[Any, Any, Any]) -> None:
            request.clear_session()

        @post("/login/{user:str}", status_code=200)
        async def login(session: SessionDep, user: FromPath[str]) -> None:
            session.log_in(user)

        @get("/sudo")
        async def sudo(session: SessionDep) -> str:
            session.require_recent_auth(60)
            return "ok"

        @get("/verify")
        async def verify(session: SessionDep) -> str:
            verify_csrf_token(session, "forged")
            return "ok"

        @get("/store-down")
        async def store_down() -> str:
            raise StoreUnavailable("the store is down")

        @websocket("/ws")
        async def ws(socket: WebSocket[Any, Any, Any], session: SessionDep) -> None:
            await socket.accept()
            await socket.send_json({"same": session is socket.session, "data": dict(session)})
            await socket.close()

        def teapot(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
            return Response("sudo, please", status_code=418, media_type=MediaType.TEXT)

        handlers = [read, put, set_session, set_model, clear, login, sudo, verify, store_down, ws]
        custom = options.pop("custom_handler", False)
        return Litestar(
            route_handlers=handlers,
            plugins=[SessionwarePlugin(secret_key_base=SECRET, store=MemoryStore(), **options)],
            exception_handlers={ReauthenticationRequired: teapot} if custom else {},
            debug=False,
        ), CSRFError

    def client(self, **options: Any) -> Any:
        from litestar.testing import TestClient

        app, _ = self.make_app(**options)
        return TestClient(app)

    def test_request_session_is_the_sessionware_session_and_so_is_the_dependency(self) -> None:
        with self.client() as client:
            client.post("/put/a/1")
            assert client.get("/").json() == {"same": True, "type": "Session", "data": {"a": 1}}

    def test_set_session_replaces_the_data(self) -> None:
        with self.client() as client:
            client.post("/put/a/1")
            client.post("/set", json={"b": 2})
            assert client.get("/").json()["data"] == {"b": 2}

    def test_set_session_takes_a_model_in_its_json_form(self) -> None:
        with self.client() as client:
            client.post("/set-model")
            assert client.get("/").json()["data"] == {"items": ["apple"], "owner": "alice"}

    def test_clear_session_drops_the_session_and_every_copy_of_its_cookie(self) -> None:
        with self.client() as client:
            client.post("/login/alice")
            client.post("/put/a/1")
            copied = client.cookies.get("session")
            reply = client.post("/clear")
            assert "Max-Age=0" in reply.headers["set-cookie"]
            assert client.get("/").json()["data"] == {}
            client.cookies.set("session", copied)
            assert client.get("/").json()["data"] == {}

    def test_session_errors_raised_in_handlers_get_their_status(self) -> None:
        with self.client() as client:
            assert client.get("/sudo").status_code == 401
            assert "re-authentication required" in client.get("/sudo").text
            client.post("/login/alice")
            assert client.get("/sudo").text == "ok"
            assert client.get("/verify").status_code == 403
            down = client.get("/store-down")
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"

    def test_the_apps_own_exception_handlers_win(self) -> None:
        with self.client(custom_handler=True) as client:
            assert client.get("/sudo").status_code == 418

    def test_websockets_see_the_same_session(self) -> None:
        with self.client() as client:
            client.post("/put/a/1")
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_json() == {"same": True, "data": {"a": 1}}

    def test_a_custom_dependency_key(self) -> None:
        from litestar import Litestar, get
        from litestar.di import NamedDependency
        from litestar.testing import TestClient

        from sessionware import MemoryStore, Session
        from sessionware.litestar import SessionwarePlugin

        @get("/")
        async def read(sw: NamedDependency[Session]) -> str:
            return type(sw).__name__

        plugin = SessionwarePlugin(secret_key_base=SECRET, store=MemoryStore(), dependency_key="sw")
        namespace = {"NamedDependency": NamedDependency}  # the annotation is a string here
        with TestClient(Litestar([read], plugins=[plugin], signature_namespace=namespace)) as client:
            assert client.get("/").text == "Session"

    def test_the_middleware_is_built_once_for_all_routes(self, caplog: pytest.LogCaptureFixture) -> None:
        """Litestar makes middleware per route; the plugin builds the session engine once (one
        start-up warning about a cookie store without revocation, not one per route)."""
        from litestar import Litestar, get

        from sessionware.litestar import SessionwarePlugin

        @get("/a")
        async def a() -> str:
            return "a"

        @get("/b")
        async def b() -> str:
            return "b"

        with caplog.at_level("WARNING", logger="sessionware"):
            Litestar([a, b], plugins=[SessionwarePlugin(secret_key_base=SECRET)])
        assert caplog.text.count("has no revocation store") == 1

    def test_bad_options_fail_when_the_plugin_is_made(self) -> None:
        from sessionware import ConfigurationError
        from sessionware.litestar import SessionwarePlugin

        with pytest.raises(ConfigurationError, match="secret_key_base"):
            SessionwarePlugin(secret_key_base="short")


@dataclass
class Cart:
    items: list[str]
    owner: str


# -- every example: its secret from the environment, its own port ------------------------

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["starlette_app", "fastapi_app", "litestar_app", "quart_app", "flask_app"]


def example(name: str) -> Any:
    return importlib.import_module(f"examples.{name}.app")


@pytest.fixture
def logging_as_it_was() -> Iterator[None]:
    """Litestar's app installs logging handlers on the stream of the moment (here capsys's,
    closed after the test): put every logger's handlers back as they were."""
    import logging

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    before = {id(lg): (lg, list(lg.handlers)) for lg in loggers if isinstance(lg, logging.Logger)}
    yield
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.handlers[:] = before.get(id(logger), (logger, []))[1]


def test_each_example_has_its_own_port_and_says_how_to_run_it() -> None:
    from examples import settings

    ports = {name: example(name).PORT for name in EXAMPLES}
    assert len(set(ports.values())) == len(EXAMPLES), ports
    assert 8000 not in ports.values()  # the demo's (make demo)
    for name, port in ports.items():
        doc = example(name).__doc__ or ""
        assert f"python -m examples.{name}.app" in doc, name
        assert f"http://127.0.0.1:{port} (``PORT`` picks another port)" in doc, name
        row = re.search(rf"``{name}``\s+``python -m examples\.{name}\.app``\s+(\d+)", settings.__doc__ or "")
        assert row is not None, f"{name} missing from the table in examples/settings.py"
        assert int(row.group(1)) == port, name
    readme = (ROOT / "README.md").read_text()
    for name, port in ports.items():
        assert re.search(rf"`python -m examples\.{name}\.app`[^|\n]*\|[^|\n]*{port}", readme), name


def test_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples import settings

    monkeypatch.delenv("PORT", raising=False)
    assert settings.port(8001) == 8001
    monkeypatch.setenv("PORT", "9123")
    assert settings.port(8001) == 9123


@pytest.mark.usefixtures("logging_as_it_was")
@pytest.mark.parametrize("name", EXAMPLES)
def test_without_secret_key_base_an_example_warns_once_on_stderr(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from examples import settings

    monkeypatch.delenv("SECRET_KEY_BASE", raising=False)
    example(name).create_app(database=tmp_path / "s.db")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [settings.NO_SECRET_WARNING]
    for words in ("SECRET_KEY_BASE", "restart", "workers", "python -m sessionware gen-secret"):
        assert words in lines[0]


@pytest.mark.usefixtures("logging_as_it_was")
@pytest.mark.parametrize("name", EXAMPLES)
def test_the_secret_comes_from_secret_key_base(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Set, it is used (a cookie from one app works on a second one built from it), and
    nothing is printed or logged at start-up."""
    monkeypatch.setenv("SECRET_KEY_BASE", SECRET)
    with caplog.at_level("WARNING"):
        first = example(name).create_app(database=tmp_path / "s.db")
        second = example(name).create_app(database=tmp_path / "s.db")
    assert capsys.readouterr().err == ""
    assert [record.getMessage() for record in caplog.records] == []
    if name == "flask_app":
        one, two = first.test_client(), second.test_client()
        token = re.search(r'name="_csrf_token" value="([^"]+)"', one.get("/").get_data(as_text=True))
        assert token is not None
        one.post("/counter", data={"_csrf_token": token.group(1)})
        cookie = one.get_cookie("session")
        assert cookie is not None
        two.set_cookie("session", cookie.value)
        assert Page(200, two.get("/").get_data(as_text=True)).counter == 1
    elif name == "quart_app":
        return  # the same code path as the others; its test client needs an event loop of its own
    else:
        from starlette.testclient import TestClient

        with TestClient(first) as one, TestClient(second) as two:
            browser = HttpxBrowser(one)
            page = browser.get("/")
            browser.post("/counter", {"_csrf_token": page.token})
            value = browser.cookie()
            assert value is not None
            other = HttpxBrowser(two)
            other.set_cookie(value)
            assert other.get("/").counter == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: What an example may print when it starts and serves a page: its documented warning,
#: the server's own lines (uvicorn's INFO lines; Flask's development server, which warns
#: that it is one), and access-log lines.
DOCUMENTED_OUTPUT = [
    r"WARNING: SECRET_KEY_BASE is not set, .*",
    r"INFO: .*",
    r" \* Serving Flask app .*",
    r" \* Debug mode: off",
    r"WARNING: This is a development server\. Do not use it in a production deployment\. .*",
    r" \* Running on http://127\.0\.0\.1:\d+",
    r"Press CTRL\+C to quit",
    r'127\.0\.0\.1 - - \[.*\] "GET / HTTP/1\.1" 200 -',
]


def test_every_example_starts_at_once_on_its_own_port_with_only_documented_output(tmp_path: Path) -> None:
    """``python -m examples.<name>.app`` for all five at once (``$PORT`` each, no secret set)."""
    from examples import settings

    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_BASE"}
    env["PYTHONPATH"] = str(ROOT)
    servers: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name in EXAMPLES:
            port = free_port()
            log = tmp_path / f"{name}.log"
            with log.open("wb") as output:
                servers[name] = (
                    subprocess.Popen(
                        [sys.executable, "-m", f"examples.{name}.app"],
                        cwd=tmp_path,
                        env={**env, "PORT": str(port)},
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    ),
                    port,
                    log,
                )
        for name, (server, port, log) in servers.items():
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                        assert 'action="/login"' in response.read().decode(), name
                    break
                except OSError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, f"{name} did not start within 30 s"
                    time.sleep(0.2)
    finally:
        for server, _, _ in servers.values():
            server.terminate()
        for server, _, _ in servers.values():
            server.wait(10)
    for name, (_, _, log) in servers.items():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())  # werkzeug colours its lines
        lines = [line for line in plain.splitlines() if line.strip()]
        assert settings.NO_SECRET_WARNING in lines, name
        unexpected = [line for line in lines if not any(re.fullmatch(p, line) for p in DOCUMENTED_OUTPUT)]
        assert unexpected == [], f"{name} printed:\n" + "\n".join(lines)
