"""Concurrent requests on one session, run for real against every server-side store (SW-40).

Requests run concurrently in one event loop, as an ASGI server runs them; the
handlers meet at barriers so that every request has loaded the session before
any of them writes, which is exactly the interleaving where other libraries
lose an update or bring a logged-out session back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware, get_session, user_sessions
from sessionware.typing import ASGIApp

from .conftest import SECRET, Reply, acall, call


class Meeting:
    """Barriers and events the handlers of one test coordinate through."""

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.first_done = asyncio.Event()

    async def all_loaded(self) -> None:
        """Wait until every request has loaded the session (or fail, never hang)."""
        async with asyncio.timeout(10):
            await self.barrier.wait()


def concurrent_app(store: Any, meeting: dict[str, Meeting]) -> ASGIApp:
    async def set_after_all_loaded(request: Request) -> Response:
        session = get_session(request)
        session.get("warm-up")  # loaded
        await meeting["m"].all_loaded()
        session[request.path_params["key"]] = request.path_params["value"]
        return PlainTextResponse("set")

    async def set_last(request: Request) -> Response:
        session = get_session(request)
        await meeting["m"].all_loaded()
        await meeting["m"].first_done.wait()  # the other request has answered
        session[request.path_params["key"]] = request.path_params["value"]
        return PlainTextResponse("set")

    async def drop_after_all_loaded(request: Request) -> Response:
        session = get_session(request)
        await meeting["m"].all_loaded()
        session.drop()
        return PlainTextResponse("dropped")

    async def renew_after_all_loaded(request: Request) -> Response:
        session = get_session(request)
        await meeting["m"].all_loaded()
        session.renew()
        return PlainTextResponse("renewed")

    async def revoke_all_after_all_loaded(request: Request) -> Response:
        session = get_session(request)
        await meeting["m"].all_loaded()
        user = session.user_id
        assert user is not None
        count = await user_sessions(request).revoke_all(user)
        return JSONResponse({"revoked": count})

    async def write(request: Request) -> Response:
        get_session(request)[request.path_params["key"]] = request.path_params["value"]
        return PlainTextResponse("written")

    async def log_in(request: Request) -> Response:
        get_session(request).log_in(request.path_params["user"])
        return PlainTextResponse("in")

    async def read(request: Request) -> Response:
        session = get_session(request)
        return JSONResponse({"user": session.user_id, "data": dict(session)})

    routes = [
        Route("/set/{key}/{value}", set_after_all_loaded),
        Route("/set-last/{key}/{value}", set_last),
        Route("/drop", drop_after_all_loaded),
        Route("/renew", renew_after_all_loaded),
        Route("/revoke-all", revoke_all_after_all_loaded),
        Route("/write/{key}/{value}", write),
        Route("/login/{user}", log_in),
        Route("/read", read),
    ]
    return SessionMiddleware(Starlette(routes=routes), secret_key_base=SECRET, store=store)


def session_data(app: ASGIApp, cookie: str) -> Any:
    return call(app, "/read", cookie=cookie).json()


def run_together(app: ASGIApp, meeting: dict[str, Meeting], *requests: tuple[str, str]) -> list[Reply]:
    async def main() -> list[Reply]:
        meeting["m"] = Meeting(len(requests))
        return list(await asyncio.gather(*(acall(app, path, cookie=cookie) for path, cookie in requests)))

    return asyncio.run(main())


@pytest.fixture
def meeting() -> dict[str, Meeting]:
    return {}


def test_concurrent_changes_to_different_keys_are_all_kept(
    server_store: Any, meeting: dict[str, Meeting]
) -> None:
    app = concurrent_app(server_store, meeting)
    cookie = call(app, "/write/start/yes").cookie()
    replies = run_together(app, meeting, *((f"/set/key{n}/value{n}", cookie) for n in range(8)))
    assert [reply.status for reply in replies] == [200] * 8
    expected = {"start": "yes", **{f"key{n}": f"value{n}" for n in range(8)}}
    assert session_data(app, cookie)["data"] == expected


def test_concurrent_changes_to_the_same_key_the_last_writer_wins(
    server_store: Any, meeting: dict[str, Meeting]
) -> None:
    app = concurrent_app(server_store, meeting)
    cookie = call(app, "/write/color/none").cookie()

    async def main() -> None:
        meeting["m"] = Meeting(2)
        first = asyncio.ensure_future(acall(app, "/set/color/red", cookie=cookie))
        last = asyncio.ensure_future(acall(app, "/set-last/color/blue", cookie=cookie))
        assert (await first).status == 200
        meeting["m"].first_done.set()
        assert (await last).status == 200

    asyncio.run(main())
    assert session_data(app, cookie)["data"] == {"color": "blue"}


def test_a_request_that_loaded_the_session_before_it_was_dropped_cannot_bring_it_back(
    server_store: Any, meeting: dict[str, Meeting]
) -> None:
    app = concurrent_app(server_store, meeting)
    cookie = call(app, "/login/alice").cookie()
    writes = [(f"/set/cart{n}/book", cookie) for n in range(5)]
    replies = run_together(app, meeting, ("/drop", cookie), *writes)
    assert all(reply.status == 200 for reply in replies)
    assert all(reply.set_cookie is None for reply in replies[1:])  # the writers re-issue nothing
    assert session_data(app, cookie) == {"user": None, "data": {}}


def test_a_revocation_during_in_flight_requests_leaves_no_session_of_the_user(
    server_store: Any, meeting: dict[str, Meeting]
) -> None:
    app = concurrent_app(server_store, meeting)
    cookies = [call(app, "/login/alice").cookie() for _ in range(4)]
    bob = call(app, "/login/bob").cookie()
    in_flight = [(f"/set/k{n}/v", cookies[n % 4]) for n in range(20)]
    replies = run_together(app, meeting, ("/revoke-all", cookies[0]), *in_flight)
    assert replies[0].json() == {"revoked": 4}
    for cookie in cookies:
        assert session_data(app, cookie)["user"] is None
    assert session_data(app, bob)["user"] == "bob"


def test_of_many_concurrent_renewals_one_wins_and_the_old_id_dies(
    server_store: Any, meeting: dict[str, Meeting]
) -> None:
    app = concurrent_app(server_store, meeting)
    old = call(app, "/login/alice").cookie()
    replies = run_together(app, meeting, *(("/renew", old) for _ in range(20)))
    issued = [reply.cookie() for reply in replies if reply.set_cookie and "Max-Age=0" not in reply.set_cookie]
    assert len(issued) == 1
    assert session_data(app, issued[0])["user"] == "alice"
    assert session_data(app, old)["user"] is None
    expired = [reply for reply in replies if reply.set_cookie and "Max-Age=0" in reply.set_cookie]
    assert len(expired) == 19  # the losers tell their browsers to forget the dead ID
