"""sessionware.fastapi: the session as a dependency and typed session values, through
FastAPI's own test client."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, assert_type

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from sessionware import ConfigurationError, MemoryStore, Session, SessionError, SessionMiddleware
from sessionware.fastapi import InvalidSessionValue, SessionDep, provide_session, session_value

from .conftest import SECRET

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    async def wait() -> T:
        return await awaitable

    return asyncio.run(wait())


class Prefs(BaseModel):
    theme: str
    font_size: int = 12


@dataclasses.dataclass
class Step:
    name: str
    done: bool


Counter = Annotated[int, Depends(session_value("counter", int, default=0))]
Tags = Annotated[list[str], Depends(session_value("tags", list[str], default=[]))]
RequiredCart = Annotated[list[str], Depends(session_value("cart", list[str]))]
Theme = Annotated[Prefs | None, Depends(session_value("prefs", Prefs, default=None))]
LenientCounter = Annotated[int, Depends(session_value("counter", int, default=-1, on_invalid="missing"))]
LenientRequired = Annotated[int, Depends(session_value("counter", int, on_invalid="missing"))]


def make_app(*, middleware: bool = True) -> FastAPI:
    app = FastAPI()

    @app.put("/session")
    async def put(request: Request, session: SessionDep) -> dict[str, Any]:
        session.update(await request.json())
        return {"same": session is request.session}

    @app.get("/session")
    def read(session: SessionDep) -> dict[str, Any]:
        return {"data": dict(dict.items(session)), "type": type(session).__name__}

    @app.post("/counter")
    def bump(session: SessionDep, counter: Counter) -> int:
        session["counter"] = counter + 1
        return counter + 1

    @app.get("/counter")
    def counter(counter: Counter) -> dict[str, Any]:
        return {"counter": counter, "type": type(counter).__name__}

    @app.post("/tags/{tag}")
    def add_tag(tag: str, tags: Tags) -> list[str]:
        tags.append(tag)  # a copy: the session is not changed
        return tags

    @app.get("/cart")
    def cart(items: RequiredCart) -> list[str]:
        return items

    @app.get("/prefs")
    def prefs(prefs: Theme) -> dict[str, Any]:
        return {"prefs": None if prefs is None else prefs.model_dump(), "model": isinstance(prefs, Prefs)}

    @app.get("/when")
    def when(
        moment: Annotated[datetime.datetime, Depends(session_value("moment", datetime.datetime))],
        pair: Annotated[tuple[int, str], Depends(session_value("pair", tuple[int, str]))],
        step: Annotated[Step, Depends(session_value("step", Step))],
    ) -> dict[str, Any]:
        return {"year": moment.year, "pair": type(pair).__name__, "step": step.name, "done": step.done}

    @app.get("/lenient")
    def lenient(counter: LenientCounter) -> int:
        return counter

    @app.get("/lenient-required")
    def lenient_required(counter: LenientRequired) -> int:
        return counter

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session: SessionDep, counter: Counter) -> None:
        await websocket.accept()
        try:
            session["written"] = True
        except SessionError:
            await websocket.send_json({"counter": counter, "read_only": True})
        await websocket.close()

    @app.websocket("/ws/cart")
    async def ws_cart(websocket: WebSocket, items: RequiredCart) -> None:
        await websocket.accept()
        await websocket.send_json(items)
        await websocket.close()

    if middleware:
        app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=MemoryStore())
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


class TestSessionDependency:
    def test_the_dependency_gives_the_requests_own_session(self, client: TestClient) -> None:
        """SessionDep is request.session, a sessionware Session, and what it writes is kept."""
        assert client.put("/session", json={"a": 1}).json() == {"same": True}
        assert client.get("/session").json() == {"data": {"a": 1}, "type": "Session"}

    def test_websocket_endpoints_get_the_session_read_only(self, client: TestClient) -> None:
        """In a websocket the dependency gives the session, and a write raises SessionError."""
        client.put("/session", json={"counter": 7})
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"counter": 7, "read_only": True}

    def test_without_the_middleware_the_dependency_raises_a_session_error(self) -> None:
        """A missing SessionMiddleware is a configuration bug: SessionError names the fix."""
        with pytest.raises(SessionError, match=r"add sessionware\.SessionMiddleware"):
            TestClient(make_app(middleware=False)).get("/session")

    def test_provide_session_is_a_coroutine_function_typed_for_mypy(self) -> None:
        """FastAPI runs it on the event loop (no worker thread); mypy sees it give a Session."""
        typed: Callable[[HTTPConnection], Awaitable[Session]] = provide_session
        scope: dict[str, Any] = {"type": "http", "session": Session({"x": 1})}
        assert run(typed(HTTPConnection(scope)))["x"] == 1


class TestSessionValue:
    def test_a_stored_value_is_given_with_its_type(self, client: TestClient) -> None:
        client.put("/session", json={"counter": 41})
        assert client.get("/counter").json() == {"counter": 41, "type": "int"}

    def test_counter_increments_persist(self, client: TestClient) -> None:
        assert [client.post("/counter").json() for _ in range(3)] == [1, 2, 3]
        assert client.get("/session").json()["data"] == {"counter": 3}

    def test_a_missing_key_gives_the_default(self, client: TestClient) -> None:
        assert client.get("/counter").json() == {"counter": 0, "type": "int"}
        assert client.get("/prefs").json() == {"prefs": None, "model": False}

    def test_the_default_is_a_fresh_copy_every_time(self, client: TestClient) -> None:
        """default=[] is safe: one request's changes to it do not reach the next."""
        assert client.post("/tags/a").json() == ["a"]
        assert client.post("/tags/b").json() == ["b"]

    def test_the_value_is_a_copy_and_changing_it_does_not_write_the_session(self, client: TestClient) -> None:
        client.put("/session", json={"tags": ["x"]})
        reply = client.post("/tags/y")
        assert reply.json() == ["x", "y"]
        assert "set-cookie" not in reply.headers
        assert client.get("/session").json()["data"] == {"tags": ["x"]}

    def test_reading_a_value_is_reading_the_session(self, client: TestClient) -> None:
        """The response depends on the cookie, so it says so, even when the default was used."""
        assert client.get("/counter").headers["vary"] == "Cookie"

    def test_a_missing_required_value_is_a_422_like_a_missing_parameter(self, client: TestClient) -> None:
        reply = client.get("/cart")
        assert reply.status_code == 422
        [error] = reply.json()["detail"]
        assert error["loc"] == ["session", "cart"]
        assert error["type"] == "missing"
        client.put("/session", json={"cart": ["apple"]})
        assert client.get("/cart").json() == ["apple"]

    def test_a_missing_required_value_closes_a_websocket_with_1008(self, client: TestClient) -> None:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/cart"):
            pass
        assert closed.value.code == 1008
        client.put("/session", json={"cart": ["pear"]})
        with client.websocket_connect("/ws/cart") as websocket:
            assert websocket.receive_json() == ["pear"]

    def test_models_dates_tuples_and_dataclasses_are_built_from_their_json_form(
        self, client: TestClient
    ) -> None:
        client.put(
            "/session",
            json={
                "prefs": {"theme": "dark"},
                "moment": "2024-05-06T07:08:09Z",
                "pair": [1, "one"],
                "step": {"name": "address", "done": False},
            },
        )
        assert client.get("/prefs").json() == {"prefs": {"theme": "dark", "font_size": 12}, "model": True}
        assert client.get("/when").json() == {"year": 2024, "pair": "tuple", "step": "address", "done": False}

    @pytest.mark.parametrize(
        ("stored", "path"),
        [
            ("41", "/counter"),  # text is not an int: no coercion
            (41.5, "/counter"),
            (True, "/cart"),
            (["a", 1], "/cart"),
        ],
    )
    def test_a_wrong_type_raises_invalid_session_value(
        self, client: TestClient, stored: Any, path: str
    ) -> None:
        key = "counter" if path == "/counter" else "cart"
        client.put("/session", json={key: stored})
        with pytest.raises(InvalidSessionValue) as raised:
            client.get(path)
        assert raised.value.key == key
        assert raised.value.expected == ("int" if key == "counter" else "list[str]")
        assert isinstance(raised.value, SessionError)
        assert isinstance(raised.value, TypeError)
        assert f"session[{key!r}] does not hold a valid" in str(raised.value)
        assert "on_invalid='missing'" in str(raised.value)

    def test_a_wrong_type_is_a_500_that_does_not_show_the_value(self) -> None:
        client = TestClient(make_app(), raise_server_exceptions=False)
        client.put("/session", json={"prefs": {"theme": "secret-theme-value", "font_size": "big"}})
        assert client.get("/prefs").status_code == 500
        with pytest.raises(InvalidSessionValue) as raised:
            TestClient(client.app, cookies=client.cookies).get("/prefs")
        assert "font_size" in str(raised.value)
        assert "secret-theme-value" not in str(raised.value)
        assert "big" not in str(raised.value)
        assert all("input" not in error for error in raised.value.errors)

    def test_on_invalid_missing_treats_a_wrong_type_as_absent_and_logs_it(
        self, client: TestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        client.put("/session", json={"counter": "seven"})
        with caplog.at_level(logging.WARNING, logger="sessionware"):
            assert client.get("/lenient").json() == -1
        assert "session['counter'] does not hold a valid int" in caplog.text
        assert "seven" not in caplog.text
        assert client.get("/lenient-required").status_code == 422
        client.put("/session", json={"counter": 3})
        assert client.get("/lenient").json() == 3

    @pytest.mark.parametrize(
        ("args", "options", "message"),
        [
            ((1, int), {}, "key to be a str"),
            (("k", int), {"on_invalid": "ignore"}, "on_invalid to be 'raise' or 'missing'"),
            (("k", object()), {}, "a type pydantic can validate"),
        ],
    )
    def test_bad_options_raise_at_definition(self, args: Any, options: Any, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            session_value(*args, **options)

    def test_the_dependency_is_typed_for_mypy(self) -> None:
        """mypy checks these assert_type lines (the test suite is type-checked): a class gives
        that class, a default widens to it, a generic alias keeps its parameters."""
        assert_type(session_value("n", int), Callable[[HTTPConnection], Awaitable[int]])
        assert_type(session_value("n", int, default=None), Callable[[HTTPConnection], Awaitable[int | None]])
        assert_type(
            session_value("tags", list[str], default=[]), Callable[[HTTPConnection], Awaitable[list[str]]]
        )
        assert_type(session_value("prefs", Prefs), Callable[[HTTPConnection], Awaitable[Prefs]])
        dependency = session_value("counter", int)
        _wrong: Callable[[HTTPConnection], Awaitable[str]] = dependency  # type: ignore[assignment]
        # ^ mypy must object (an int is not a str); strict mypy fails on an unused ignore
        assert dependency.__name__ == "session_value('counter', int)"
        request = HTTPConnection({"type": "http", "session": Session({"counter": 5})})
        assert run(dependency(request)) == 5
