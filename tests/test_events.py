"""Lifecycle events and OpenTelemetry: hooks fire with typed events, never break a request."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sessionware import CookieStore, Expiry, MemoryStore, SQLiteStore
from sessionware.events import EVENT_KINDS, INVALID_COOKIE_REASONS, Events, SessionEvent
from sessionware.telemetry import METRICS, OpenTelemetry
from sessionware.testing import FakeClock

from .conftest import SECRET, build_app, call

DOCS = Path(__file__).resolve().parents[1] / "docs"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[SessionEvent] = []

    def __call__(self, event: SessionEvent) -> None:
        self.seen.append(event)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.seen]


def wsgi_get(app: Any, path: str) -> Any:
    from werkzeug.test import Client

    return Client(app).get(path)


def every_hook(hook: Any) -> Events:
    return Events(**{"on_" + kind: hook for kind in EVENT_KINDS})


def test_a_log_in_and_a_log_out_fire_their_hooks_with_the_user_the_handle_and_the_path(
    clock: FakeClock,
) -> None:
    recorder = Recorder()
    app = build_app(MemoryStore(), clock, events=every_hook(recorder))
    cookie = call(app, "/auth/alice").cookie()
    listing = call(app, "/sessions/alice", cookie=cookie).json()
    call(app, "/clear", cookie=cookie)
    log_in, log_out = recorder.seen
    assert (log_in.kind, log_in.user_id, log_in.reason, log_in.path) == (
        "log_in",
        "alice",
        "password",
        "/auth/alice",
    )
    assert log_in.handle == listing[0]["handle"] == log_out.handle  # a handle, as listings show it
    assert (log_out.kind, log_out.user_id, log_out.path) == ("log_out", "alice", "/clear")
    assert log_in.time == int(clock())


def test_an_event_never_holds_the_session_id_or_a_cookie_value(clock: FakeClock) -> None:
    recorder = Recorder()
    app = build_app(MemoryStore(), clock, events=every_hook(recorder))
    cookie = call(app, "/auth/alice").cookie()
    call(app, "/renew", cookie=cookie)
    value = cookie.split("=", 1)[1]
    for event in recorder.seen:
        text = repr(dataclasses.astuple(event))
        assert value not in text
        assert value[3:20] not in text


def test_invalid_cookies_are_reported_with_their_reason(clock: FakeClock) -> None:
    recorder = Recorder()
    app = build_app(MemoryStore(), clock, events=every_hook(recorder))
    cookie = call(app, "/auth/alice").cookie()
    call(app, "/whoami", cookie=cookie[:-4] + "AAAA")  # altered: the MAC fails
    call(app, "/whoami", cookie="session=" + "x" * 5000)
    call(app, "/whoami", cookie="session=garbage")
    call(app, "/revoke-all/alice", cookie=cookie)
    call(app, "/whoami", cookie=cookie)  # revoked
    reasons = [event.reason for event in recorder.seen if event.kind == "invalid_cookie"]
    assert reasons == ["bad signature", "oversize", "malformed", "revoked"]
    assert all(event.cookie == "session" for event in recorder.seen if event.kind == "invalid_cookie")
    assert set(reasons) <= set(INVALID_COOKIE_REASONS)


@pytest.mark.parametrize("store_kind", ["memory", "cookie"])
def test_an_expired_session_fires_on_expire_saying_idle_or_absolute(
    store_kind: str, clock: FakeClock, tmp_path: Path
) -> None:
    recorder = Recorder()
    store = MemoryStore() if store_kind == "memory" else CookieStore(revocation=False)
    expiry = Expiry(idle_timeout=100, absolute_timeout=1000)
    app = build_app(store, clock, events=Events(on_expire=recorder), expiry=expiry)
    cookie = call(app, "/auth/alice").cookie()
    clock.advance(150)
    call(app, "/whoami", cookie=cookie)
    assert [(e.kind, e.reason, e.user_id) for e in recorder.seen] == [("expire", "idle", "alice")]
    cookie = call(app, "/auth/bob").cookie()
    for _ in range(11):
        clock.advance(99)
        reply = call(app, "/incr", cookie=cookie)
        cookie = reply.cookie() if reply.set_cookie else cookie
    assert recorder.seen[-1].reason == "absolute"


def test_a_raising_hook_is_logged_and_the_request_goes_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: SessionEvent) -> None:
        raise RuntimeError("hook bug")

    app = build_app(MemoryStore(), clock, events=Events(on_log_in=broken))
    reply = call(app, "/auth/alice")
    assert reply.status == 200
    assert call(app, "/whoami", cookie=reply.cookie()).json()["user"] == "alice"
    assert "the log_in hook" in caplog.text
    assert "hook bug" in caplog.text


def test_async_hooks_are_awaited_under_asgi(clock: FakeClock) -> None:
    seen: list[str] = []

    async def hook(event: SessionEvent) -> None:
        seen.append(event.kind)

    app = build_app(MemoryStore(), clock, events=Events(on_log_in=hook, on_renew=hook))
    cookie = call(app, "/auth/alice").cookie()
    call(app, "/renew", cookie=cookie)
    assert seen == ["log_in", "renew"]


def test_revocations_and_session_limits_fire_their_events(clock: FakeClock) -> None:
    recorder = Recorder()
    app = build_app(MemoryStore(), clock, events=every_hook(recorder), max_sessions_per_user=1)
    first = call(app, "/auth/alice").cookie()
    second = call(app, "/auth/alice").cookie()  # evicts the first
    assert [(e.kind, e.reason, e.count) for e in recorder.seen if e.kind == "session_limit"] == [
        ("session_limit", "evict", 1)
    ]
    handle = call(app, "/sessions/alice", cookie=second).json()[0]["handle"]
    assert call(app, f"/revoke/alice/{handle}", cookie=second).json() == {"revoked": True}
    revoke = [e for e in recorder.seen if e.kind == "revoke"]
    assert [(e.reason, e.handle, e.user_id) for e in revoke] == [("one", handle, "alice")]
    assert first != second


def test_a_session_limit_refusal_is_reported_and_the_log_in_is_not(clock: FakeClock) -> None:
    recorder = Recorder()
    app = build_app(
        MemoryStore(), clock, events=every_hook(recorder), max_sessions_per_user=1, on_session_limit="reject"
    )
    call(app, "/auth/alice")
    assert call(app, "/auth/alice").status == 409
    assert recorder.kinds() == ["log_in", "session_limit"]
    assert recorder.seen[-1].reason == "reject"


def test_csrf_failures_fire_their_hook(clock: FakeClock) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from sessionware import CSRFMiddleware, SessionMiddleware

    recorder = Recorder()

    async def form(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[Route("/form", form, methods=["POST"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key_base=SECRET, events=Events(on_csrf_failure=recorder)),
            Middleware(CSRFMiddleware),
        ],
    )
    assert call(app, "/form", method="POST").status == 403
    assert recorder.kinds() == ["csrf_failure"]
    assert recorder.seen[0].path == "/form"


def test_wsgi_runs_sync_and_async_hooks(tmp_path: Path, clock: FakeClock) -> None:
    from sessionware.wsgi import SessionMiddleware, get_session

    seen: list[str] = []

    async def hook(event: SessionEvent) -> None:
        seen.append("async " + event.kind)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        get_session(environ).log_in("alice")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = SessionMiddleware(
        app,
        secret_key_base=SECRET,
        store=SQLiteStore(tmp_path / "s.db"),
        events=Events(on_log_in=hook),
        clock=clock,
    )
    wsgi_get(wrapped, "/")
    assert seen == ["async log_in"]


# -- OpenTelemetry ----------------------------------------------------------------


@pytest.fixture
def otel() -> Any:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = OpenTelemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider
    )
    return telemetry, reader, exporter


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def test_telemetry_counts_sessions_log_ins_and_invalid_cookies(otel: Any, clock: FakeClock) -> None:
    telemetry, reader, _ = otel
    app = build_app(MemoryStore(), clock, telemetry=telemetry)
    cookie = call(app, "/auth/alice").cookie()
    call(app, "/whoami", cookie=cookie)
    call(app, "/whoami", cookie="session=garbage")
    call(app, "/clear", cookie=cookie)
    points = _points(reader)
    loaded = {p.attributes["outcome"]: p.value for p in points["sessionware.sessions.loaded"]}
    assert loaded == {"none": 1, "loaded": 2, "refused": 1}
    assert [(p.attributes, p.value) for p in points["sessionware.log_ins"]] == [({"how": "password"}, 1)]
    assert [p.value for p in points["sessionware.log_outs"]] == [1]
    assert [(p.attributes["reason"], p.value) for p in points["sessionware.invalid_cookies"]] == [
        ("malformed", 1)
    ]
    assert [p.value for p in points["sessionware.sessions.created"]] == [1]
    sizes = points["sessionware.cookie.size"]
    assert sizes[0].count >= 1
    assert sizes[0].min > 40


def test_store_calls_get_spans_with_the_database_system_and_a_latency_histogram(
    otel: Any, clock: FakeClock, tmp_path: Path
) -> None:
    telemetry, reader, exporter = otel
    app = build_app(SQLiteStore(tmp_path / "s.db", clock=clock), clock, telemetry=telemetry)
    cookie = call(app, "/auth/alice").cookie()
    call(app, "/whoami", cookie=cookie)
    spans = exporter.get_finished_spans()
    operations = [span.attributes["db.operation.name"] for span in spans]
    assert "create" in operations
    assert "load" in operations
    assert {span.attributes["db.system"] for span in spans} == {"sqlite"}
    durations = _points(reader)["sessionware.store.duration"]
    assert {p.attributes["db.operation.name"] for p in durations} >= {"create", "load"}
    assert all(p.attributes["sessionware.store"] == "SQLiteStore" for p in durations)


def test_telemetry_under_wsgi_times_the_sync_store(otel: Any, clock: FakeClock) -> None:
    from sessionware.wsgi import SessionMiddleware, get_session

    telemetry, reader, exporter = otel

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        get_session(environ).log_in("alice")
        start_response("200 OK", [])
        return [b"ok"]

    wsgi_get(SessionMiddleware(app, secret_key_base=SECRET, store=MemoryStore(), telemetry=telemetry), "/")
    assert [s.attributes["db.operation.name"] for s in exporter.get_finished_spans()] == ["create"]
    assert [p.value for p in _points(reader)["sessionware.log_ins"]] == [1]


def test_the_events_page_lists_every_event_and_every_metric() -> None:
    text = (DOCS / "events.md").read_text()
    for kind in EVENT_KINDS:
        assert f"`on_{kind}`" in text, kind
    for reason in INVALID_COOKIE_REASONS:
        assert f"`{reason}`" in text, reason
    documented = set(re.findall(r"`(sessionware\.[a-z_.]+)`", text))
    assert set(METRICS) <= documented
    assert {name for name in documented if name.count(".") >= 2 and name not in METRICS} <= {
        "sessionware.events.Events",
        "sessionware.telemetry.OpenTelemetry",
    }


def test_asgi_hooks_run_once_the_response_is_sent(clock: FakeClock) -> None:
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    from sessionware import SessionMiddleware, get_session

    sent: list[str] = []
    seen_at: list[list[str]] = []

    def hook(event: SessionEvent) -> None:
        seen_at.append(list(sent))  # what the client had been sent when the hook ran

    async def login(request: Request) -> PlainTextResponse:
        get_session(request).log_in("alice")
        return PlainTextResponse("welcome")

    async def streamed(request: Request) -> StreamingResponse:
        get_session(request).log_in("bob")

        async def parts() -> Any:
            yield b"one "
            yield b"two"

        return StreamingResponse(parts())

    inner = Starlette(routes=[Route("/login", login), Route("/stream", streamed)])
    app = SessionMiddleware(
        inner, secret_key_base=SECRET, store=MemoryStore(), clock=clock, events=Events(on_log_in=hook)
    )

    async def request(path: str) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }

        requested = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client stays until the response is over
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            more = message.get("more_body", False)
            sent.append(message["type"] + (" more" if more else ""))
            if message["type"] == "http.response.body" and not more:
                done.set()

        await app(scope, receive, send)

    asyncio.run(request("/login"))
    assert seen_at == [["http.response.start", "http.response.body"]]
    sent.clear()
    seen_at.clear()
    asyncio.run(request("/stream"))
    assert seen_at[0][0] == "http.response.start"
    assert seen_at[0][-1] == "http.response.body"  # the final, empty one: after every part
    assert sum(1 for kind in seen_at[0] if kind == "http.response.body more") == 2
