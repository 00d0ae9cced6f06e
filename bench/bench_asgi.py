"""Per-request overhead of session middlewares, in process, without sockets.

Every variant wraps the same tiny raw-ASGI app and is called directly with a
prepared scope, in one event loop, in one run: the ratios between variants are
what this measures (the machine is shared and noisy; absolute figures are not
comparable between runs). Many short rounds run every variant once each, in a
shuffled order, so drift hits all of them alike; the figure per variant is the
median over rounds of the mean time per request.

Scenarios:
  a  valid cookie, the handler reads one key
  b  valid cookie, the handler writes one key (a new value each request)
  c  no cookie, the handler does not touch the session
  d  no cookie, the handler writes one key

Run: python bench/bench_asgi.py [--rounds N] [--requests N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` importable as a script

import sessionware
from bench._report import write_section
from sessionware import CookieStore, MemoryStore, SQLiteStore
from sessionware.typing import ASGIApp, Message, Receive, Scope, Send

SECRET = "bench-secret-" + "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
SCENARIOS = ("a", "b", "c", "d")
DESCRIPTIONS = {
    "a": "valid cookie, handler reads one key",
    "b": "valid cookie, handler writes one key",
    "c": "no cookie, session untouched",
    "d": "no cookie, handler writes one key",
}


def make_app(scenario: str, session_key: str = "session") -> ASGIApp:
    counter = 0
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    body: Message = {"type": "http.response.body", "body": b"ok"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal counter
        if scenario == "a":
            scope[session_key]["user"]  # the read is the point
        elif scenario in ("b", "d"):
            counter += 1
            scope[session_key]["n"] = counter
        await send(dict(start))
        await send(body)

    return app


def starsessions_app(inner: ASGIApp, store: Any) -> ASGIApp:
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessionMiddleware

    return StarSessionMiddleware(
        SessionAutoloadMiddleware(inner), store=store, cookie_https_only=False, lifetime=3600 * 12
    )


@dataclass
class Variant:
    name: str
    build: Callable[[ASGIApp], ASGIApp] | None  # None: no middleware
    store_calls: Callable[[], int] | None = None


# One store per variant, shared by the seeding request and every scenario.
def sw(store: Any, **options: Any) -> Callable[[ASGIApp], ASGIApp]:
    return lambda app: sessionware.SessionMiddleware(app, secret_key_base=SECRET, store=store, **options)


def star(store: Any) -> Callable[[ASGIApp], ASGIApp]:
    return lambda app: starsessions_app(app, store)


def variants(tmp: str) -> list[Variant]:
    from starsessions import CookieStore as StarCookieStore
    from starsessions import InMemoryStore as StarMemoryStore

    return [
        Variant("no middleware", None),
        Variant(
            "starlette SessionMiddleware", lambda app: StarletteSessionMiddleware(app, secret_key=SECRET)
        ),
        Variant("starsessions CookieStore", star(StarCookieStore(SECRET))),
        Variant("starsessions InMemoryStore", star(StarMemoryStore())),
        Variant("sessionware CookieStore (encrypted)", sw(CookieStore())),
        Variant("sessionware CookieStore (encrypted, cookie_cache=0)", sw(CookieStore(), cookie_cache=0)),
        Variant("sessionware CookieStore (signed)", sw(CookieStore(encrypt=False))),
        Variant(OTEL, sw(CookieStore(), telemetry=otel_telemetry())),
        Variant("sessionware MemoryStore", sw(MemoryStore())),
        Variant("sessionware SQLiteStore", sw(SQLiteStore(os.path.join(tmp, "bench.db")))),
    ]


OTEL = "sessionware CookieStore (encrypted, OpenTelemetry)"


def otel_telemetry() -> Any:
    """sessionware's OpenTelemetry option on the SDK's providers, configured as an app would:
    metrics into a reader that keeps them (collected when asked), spans to a processor that
    drops them -- every instrument and span is made and recorded, nothing is exported."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from sessionware.telemetry import OpenTelemetry

    return OpenTelemetry(
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        tracer_provider=TracerProvider(),
    )


def scope_with(cookie: bytes | None) -> Scope:
    headers = [(b"host", b"testserver"), (b"user-agent", b"bench")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Capture:
    def __init__(self) -> None:
        self.set_cookie: bytes | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            for name, value in message.get("headers", ()):
                if name.lower() == b"set-cookie":
                    self.set_cookie = value


async def seed_cookie(build: Callable[[ASGIApp], ASGIApp]) -> bytes:
    """Make a valid session cookie holding {"user": ...} through the middleware itself."""

    async def writer(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["user"] = "alice"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = build(writer)
    capture = Capture()
    await app(scope_with(None), receive, capture)
    assert capture.set_cookie is not None, "the middleware did not set a cookie"
    return capture.set_cookie.split(b";", 1)[0]


async def noop_send(message: Message) -> None:
    return None


async def measure(app: ASGIApp, scope: Scope, requests: int) -> float:
    """Mean microseconds per request over ``requests`` calls."""
    start = time.perf_counter_ns()
    for _ in range(requests):
        await app(dict(scope), receive, noop_send)
    return (time.perf_counter_ns() - start) / requests / 1000


async def run(rounds: int, requests: int) -> dict[str, dict[str, tuple[float, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        chosen = variants(tmp)
        apps: dict[tuple[str, str], tuple[ASGIApp, Scope]] = {}
        for variant in chosen:
            cookie = None if variant.build is None else await seed_cookie(variant.build)
            for scenario in SCENARIOS:
                inner = make_app(scenario)
                if variant.build is None:

                    async def plain(
                        scope: Scope, receive: Receive, send: Send, inner: ASGIApp = inner
                    ) -> None:
                        scope["session"] = {"user": "alice"}
                        await inner(scope, receive, send)

                    app: ASGIApp = plain
                else:
                    app = variant.build(inner)
                scope = scope_with(cookie if scenario in ("a", "b") else None)
                apps[(variant.name, scenario)] = (app, scope)
        # warm up every variant once
        for app, scope in apps.values():
            await measure(app, scope, max(50, requests // 10))
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in apps}
        order = list(apps)
        shuffler = random.Random(2026)
        for _ in range(rounds):
            shuffler.shuffle(order)  # no variant always runs right after a slow one
            for key in order:
                app, scope = apps[key]
                samples[key].append(await measure(app, scope, requests))
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for (name, scenario), values in samples.items():
            results.setdefault(name, {})[scenario] = (statistics.median(values), min(values))
        return results


class Counting:
    """Counts a store's calls, for the (untimed) store-calls-per-request table: the methods
    called, or -- for SQLiteStore, whose event-loop face runs statements itself -- the SQL
    statements its connections run (SQLite's trace callback)."""

    calls = 0

    @classmethod
    def wrap(cls, store: Any) -> Any:
        kind = type(store)

        class Counted(kind):  # type: ignore[valid-type,misc]
            pass

        if kind is SQLiteStore:
            original_open = kind._open

            def traced_open(self: Any, *args: Any, **kw: Any) -> Any:
                connection = original_open(self, *args, **kw)
                connection.set_trace_callback(lambda statement: setattr(cls, "calls", cls.calls + 1))
                return connection

            Counted._open = traced_open
        names = () if kind is SQLiteStore else ("load", "create", "update", "delete")
        for name in (*names, "save", "read", "write", "remove", "exists"):
            original = getattr(kind, name, None)
            if original is None:
                continue
            if asyncio.iscoroutinefunction(original):

                async def acounted(self: Any, *args: Any, _original: Any = original, **kw: Any) -> Any:
                    cls.calls += 1
                    return await _original(self, *args, **kw)

                setattr(Counted, name, acounted)
            else:

                def counted(self: Any, *args: Any, _original: Any = original, **kw: Any) -> Any:
                    cls.calls += 1
                    return _original(self, *args, **kw)

                setattr(Counted, name, counted)
        store.__class__ = Counted
        return store


async def store_calls(tmp: str, requests: int = 200) -> dict[str, dict[str, float]]:
    """Store calls per request for the server-side variants, per scenario."""
    from starsessions import InMemoryStore as StarMemoryStore

    makers: dict[str, Callable[[], Any]] = {
        "starsessions InMemoryStore": StarMemoryStore,
        "sessionware MemoryStore": MemoryStore,
        "sessionware SQLiteStore": lambda: SQLiteStore(os.path.join(tmp, "calls.db")),
    }
    out: dict[str, dict[str, float]] = {}
    for name, make in makers.items():
        store = Counting.wrap(make())
        build = star(store) if name.startswith("starsessions") else sw(store)
        cookie = await seed_cookie(build)
        for scenario in SCENARIOS:
            app = build(make_app(scenario))
            scope = scope_with(cookie if scenario in ("a", "b") else None)
            Counting.calls = 0
            for _ in range(requests):
                await app(dict(scope), receive, noop_send)
            out.setdefault(name, {})[scenario] = Counting.calls / requests
    return out


def targets(
    results: dict[str, dict[str, tuple[float, float]]], calls: dict[str, dict[str, float]]
) -> list[str]:
    """The targets, checked against this run."""

    def ratio(name: str, scenario: str) -> tuple[float, float]:
        base, star, mine = (
            results[n][scenario] for n in ("no middleware", "starlette SessionMiddleware", name)
        )
        return tuple((mine[i] - base[i]) / (star[i] - base[i]) for i in (0, 1))  # type: ignore[return-value]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    encrypted = "sessionware CookieStore (encrypted)"
    rows = []
    for label, scenario, limit in (
        ("(a) read", "a", 0.5),
        ("(b) write", "b", 0.5),
        ("(c) untouched", "c", 1.0),
    ):
        median, fastest = ratio(encrypted, scenario)
        rows.append(
            f"| {label}: encrypted CookieStore ≤ {limit}× Starlette | {median:.2f}× | {fastest:.2f}× "
            f"| {verdict(median <= limit and fastest <= limit)} |"
        )
    for label, scenario, limit in (("(a) read", "a", 1.0), ("(b) write", "b", 2.0)):
        median, fastest = ratio("sessionware SQLiteStore", scenario)
        rows.append(
            f"| {label}: SQLiteStore ≤ {limit}× Starlette | {median:.2f}× | {fastest:.2f}× "
            f"| {verdict(median <= limit and fastest <= limit)} |"
        )
    extra = [results[OTEL]["a"][i] - results[encrypted]["a"][i] for i in (0, 1)]
    rows.append(
        f"| (a) read with OpenTelemetry configured: ≤ +5 µs over the encrypted CookieStore "
        f"| +{extra[0]:.1f} µs | +{extra[1]:.1f} µs | {verdict(extra[0] <= 5 and extra[1] <= 5)} |"
    )
    memory, cookie = ratio("sessionware MemoryStore", "a"), ratio(encrypted, "a")
    rows.append(
        f"| (a) read: MemoryStore ≤ the encrypted CookieStore | {memory[0] / cookie[0]:.2f}× it "
        f"| {memory[1] / cookie[1]:.2f}× it | {verdict(memory[0] <= cookie[0] and memory[1] <= cookie[1])} |"
    )
    untouched = max(calls[name]["c"] for name in calls if name.startswith("sessionware"))
    rows.append(f"| (c) zero store calls | {untouched:.2f} calls | | {verdict(untouched == 0)} |")
    for name in ("sessionware MemoryStore", "sessionware SQLiteStore"):
        reads, writes = calls[name]["a"], calls[name]["b"]
        rows.append(f"| (a) {name}: one load, no write | {reads:.2f} calls | | {verdict(reads == 1)} |")
        rows.append(f"| (b) {name}: one load, one update | {writes:.2f} calls | | {verdict(writes == 2)} |")
    return [
        "## Targets",
        "",
        "| target | median | min | verdict |",
        "|---|---:|---:|---|",
        *rows,
        "",
    ]


def report(
    results: dict[str, dict[str, tuple[float, float]]], command: str, calls: dict[str, dict[str, float]]
) -> str:
    base = results["no middleware"]
    star = results["starlette SessionMiddleware"]
    lines = [
        "# Benchmarks",
        "",
        "Per-request overhead of session middlewares, measured in process by calling the ASGI app",
        "directly (no sockets), every variant in one run. Each of many short rounds runs every",
        "variant once, in a shuffled order, so drift on this shared, noisy machine hits all of them",
        "alike. Per variant: the **median** and the **minimum** over rounds of the mean time per",
        "request. The machine switches between fast and slow spells, so both are shown; the",
        "minimum is the least disturbed figure. **Overhead** = variant minus no middleware;",
        "**ratio** = overhead divided by Starlette SessionMiddleware's overhead in the same",
        "scenario, by the same statistic. Compare ratios, not absolute figures.",
        "",
        f"Command: `{command}`",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs;"
        f" run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "sessionware remembers recently verified cookie values (`cookie_cache`, on by default), so",
        "a browser re-sending the same cookie costs no decryption; the `cookie_cache=0` row shows",
        "the cost of verifying every request.",
        "",
    ]
    for scenario in SCENARIOS:
        lines += [
            f"## ({scenario}) {DESCRIPTIONS[scenario]}",
            "",
            "| variant | median µs | overhead | ratio | min µs | overhead | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        star_median = star[scenario][0] - base[scenario][0]
        star_min = star[scenario][1] - base[scenario][1]
        for name, values in results.items():
            median, fastest = values[scenario]
            over_median = median - base[scenario][0]
            over_min = fastest - base[scenario][1]
            if name == "no middleware":
                lines.append(f"| {name} | {median:.1f} | | | {fastest:.1f} | | |")
                continue
            lines.append(
                f"| {name} | {median:.1f} | {over_median:.1f} | {over_median / star_median:.2f}× "
                f"| {fastest:.1f} | {over_min:.1f} | {over_min / star_min:.2f}× |"
            )
        lines.append("")
    lines += targets(results, calls)
    lines += [
        "## Store calls per request",
        "",
        "Counted in a separate, untimed pass of 200 requests per scenario (all within one",
        "`touch_interval`, so sessionware's read-only requests record no activity).",
        "",
        "| variant | (a) read | (b) write | (c) untouched | (d) new + write |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, counts in calls.items():
        cells = " | ".join(f"{counts[scenario]:.2f}" for scenario in SCENARIOS)
        lines.append(f"| {name} | {cells} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=60, help="rounds (each runs every variant once)")
    parser.add_argument("--requests", type=int, default=300, help="requests per variant per round")
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report to PATH")
    args = parser.parse_args()
    results = asyncio.run(run(args.rounds, args.requests))
    with tempfile.TemporaryDirectory() as tmp:
        calls = asyncio.run(store_calls(tmp))
    command = "python bench/bench_asgi.py " + " ".join(sys.argv[1:])
    text = report(results, command.strip(), calls)
    print(text)
    if args.write:
        write_section(args.write, "bench_asgi", text)


if __name__ == "__main__":
    main()
