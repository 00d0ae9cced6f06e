"""Per-request overhead of Flask session interfaces, in process, through the WSGI callable.

Every variant is the same tiny Flask app (four routes, one per scenario) with a
different session interface, called directly with a prepared WSGI environ and
a no-op ``start_response``; the response body is iterated and closed, as a
server would. All variants run in one process, in one run: the ratios between
them are what this measures (the machine is shared and noisy; absolute figures
are not comparable between runs). Many short rounds run every variant once
each, in a shuffled order; per variant, the median and the minimum over rounds
of the mean time per request.

The baseline ("bare Flask") is the same app with a session interface that does
nothing: it hands the handler a plain dict holding ``{"user": "alice"}`` and
saves nothing, so overhead = variant minus that is the whole cost of a
session.

Scenarios, as in bench_asgi.py:
  a  valid cookie, the handler reads one key
  b  valid cookie, the handler writes one key (a new value each request)
  c  no cookie, the handler does not touch the session
  d  no cookie, the handler writes one key

Variants: bare Flask; Flask's built-in SecureCookieSessionInterface;
sessionware's Flask interface on the cookie store (encrypted, encrypted with
cookie_cache=0, signed), SQLiteStore and RedisStore; Flask-Session 0.8.0's
Redis backend (its defaults: permanent sessions, refreshed on every request).
Redis is the one at --redis-url (default redis://127.0.0.1:6379/0); the keys
the bench writes carry a prefix of its own and are deleted afterwards.

Before timing, an untimed pass checks every variant behaves: (a) reads the
seeded value, (b) and (d) writes are read back through the cookie they set,
and Set-Cookie is counted per scenario.

Run: python bench/bench_wsgi.py [--quick] [--rounds N] [--requests N]
                                [--write docs/benchmarks.md] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask
import redis
from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import write_section
from sessionware import CookieStore, SQLiteStore
from sessionware.flask import Sessionware
from sessionware.stores.redis import RedisStore

SECRET = "bench-secret-" + "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
FLASK_SECRET = "bench-flask-secret-key"
SCENARIOS = ("a", "b", "c", "d")
DESCRIPTIONS = {
    "a": "valid cookie, handler reads one key",
    "b": "valid cookie, handler writes one key",
    "c": "no cookie, session untouched",
    "d": "no cookie, handler writes one key",
}
BARE = "bare Flask (no session)"
BUILTIN = "Flask SecureCookieSessionInterface"
ENCRYPTED = "sessionware CookieStore (encrypted)"
#: Set-Cookie per request each variant must send, per scenario (checked before timing).
FLASK_SESSION = "Flask-Session 0.8.0 RedisSessionInterface"
EXPECTED_SET_COOKIE = {"a": 0.0, "b": 1.0, "c": 0.0, "d": 1.0}
EXPECTED_OVERRIDES = {
    FLASK_SESSION: {"a": 1.0},  # permanent sessions, refreshed on every request
    # a server-side session's ID cookie is re-sent only when it changes
    "sessionware SQLiteStore": {"b": 0.0},
    "sessionware RedisStore": {"b": 0.0},
}

Environ = dict[str, Any]


class _PlainSession(dict[str, Any], SessionMixin):
    pass


class NoSession(FlaskSessionInterface):
    """The baseline: a plain dict with the seeded data, nothing verified, nothing saved."""

    def open_session(self, app: flask.Flask, request: flask.Request) -> _PlainSession:
        return _PlainSession(user="alice")

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        return None


def make_app(install: Callable[[flask.Flask], None]) -> flask.Flask:
    """The same app for every variant; ``install`` sets up its session."""
    app = flask.Flask("bench_wsgi")
    app.config["SECRET_KEY"] = FLASK_SECRET
    counter = 0

    @app.get("/a")
    def read() -> str:
        return str(flask.session["user"])  # the read is the point

    @app.get("/b")
    @app.get("/d")
    def write() -> str:
        nonlocal counter
        counter += 1
        flask.session["n"] = counter
        return "ok"

    @app.get("/c")
    def untouched() -> str:
        return "ok"

    @app.get("/seed")
    def seed() -> str:
        flask.session["user"] = "alice"
        return "ok"

    @app.get("/n")
    def read_n() -> str:
        return str(flask.session.get("n"))

    install(app)
    return app


@dataclass
class Variant:
    name: str
    install: Callable[[flask.Flask], None]
    cleanup: Callable[[], None] = field(default=lambda: None)


def sessionware_variant(name: str, store: Any, **options: Any) -> Variant:
    def install(app: flask.Flask) -> None:
        Sessionware(app, secret_key_base=SECRET, store=store, **options)

    return Variant(name, install)


def variants(tmp: str, redis_url: str) -> list[Variant]:
    from flask_session import Session as FlaskSessionExtension

    run_id = uuid.uuid4().hex[:8]
    sw_redis = RedisStore(redis_url, prefix=f"swbench-wsgi-{run_id}:")
    fs_client = redis.Redis.from_url(redis_url)
    fs_prefix = f"swbench-fs-{run_id}:"

    def builtin(app: flask.Flask) -> None:
        pass  # Flask's default session interface

    def bare(app: flask.Flask) -> None:
        app.session_interface = NoSession()

    def flask_session(app: flask.Flask) -> None:
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=fs_client, SESSION_KEY_PREFIX=fs_prefix)
        FlaskSessionExtension(app)

    def cleanup_redis() -> None:
        client = redis.Redis.from_url(redis_url)
        for prefix in (f"swbench-wsgi-{run_id}:", fs_prefix):
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()
        sw_redis.close()
        fs_client.close()

    return [
        Variant(BARE, bare),
        Variant(BUILTIN, builtin),
        sessionware_variant(ENCRYPTED, CookieStore()),
        sessionware_variant(
            "sessionware CookieStore (encrypted, cookie_cache=0)", CookieStore(), cookie_cache=0
        ),
        sessionware_variant("sessionware CookieStore (signed)", CookieStore(encrypt=False)),
        sessionware_variant("sessionware SQLiteStore", SQLiteStore(os.path.join(tmp, "bench.db"))),
        sessionware_variant("sessionware RedisStore", sw_redis),
        Variant(FLASK_SESSION, flask_session, cleanup_redis),
    ]


# -- the harness: a prepared environ, a no-op start_response ----------------------------


def environ_for(path: str, cookie: str | None) -> Environ:
    environ: Environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "HTTP_USER_AGENT": "bench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


def noop_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def consume(result: Iterable[bytes]) -> bytes:
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


@dataclass
class Reply:
    status: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def set_cookie(self) -> str | None:
        found = [value for name, value in self.headers if name.lower() == "set-cookie"]
        assert len(found) <= 1, found
        return found[0] if found else None

    def cookie_pair(self) -> str:
        assert self.set_cookie is not None, "no Set-Cookie"
        return self.set_cookie.split(";", 1)[0]


def request(app: flask.Flask, path: str, cookie: str | None = None) -> Reply:
    reply = Reply()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        reply.status, reply.headers = status, list(headers)
        return None

    reply.body = consume(app(environ_for(path, cookie), start_response))
    return reply


def measure(app: flask.Flask, environ: Environ, requests: int) -> float:
    """Mean microseconds per request over ``requests`` calls of a WSGI app."""
    start = time.perf_counter_ns()
    for _ in range(requests):
        result = app(environ.copy(), noop_start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter_ns() - start) / requests / 1000


# -- behaviour, checked before timing ------------------------------------------------------


def seed_cookie(app: flask.Flask, name: str) -> str | None:
    if name == BARE:
        return None
    return request(app, "/seed").cookie_pair()


def check(apps: dict[str, flask.Flask], cookies: dict[str, str | None], requests: int = 20) -> dict[str, Any]:
    """Set-Cookie per request for each variant and scenario, and what the requests did."""
    set_cookie: dict[str, dict[str, float]] = {}
    problems: list[str] = []
    for name, app in apps.items():
        if name == BARE:
            continue
        counts = {}
        for scenario in SCENARIOS:
            cookie = cookies[name] if scenario in ("a", "b") else None
            sent = 0
            for _ in range(requests):
                reply = request(app, "/" + scenario, cookie)
                if not reply.status.startswith("200"):
                    problems.append(f"{name} ({scenario}): {reply.status}")
                sent += reply.set_cookie is not None
                if scenario == "a" and reply.body != b"alice":
                    problems.append(f"{name} (a): read {reply.body!r}, not the seeded value")
                if scenario in ("b", "d"):
                    after = cookie if reply.set_cookie is None else reply.cookie_pair()
                    written = request(app, "/n", after).body
                    if not written.isdigit():
                        problems.append(f"{name} ({scenario}): the write did not stick ({written!r})")
            counts[scenario] = sent / requests
            expected = EXPECTED_OVERRIDES.get(name, {}).get(scenario, EXPECTED_SET_COOKIE[scenario])
            if counts[scenario] != expected:
                problems.append(
                    f"{name} ({scenario}): {counts[scenario]:.2f} Set-Cookie, expected {expected}"
                )
        set_cookie[name] = counts
    return {"set_cookie": set_cookie, "problems": problems}


# -- the run -------------------------------------------------------------------------------


def run(
    rounds: int, requests: int, redis_url: str
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        chosen = variants(tmp, redis_url)
        try:
            apps = {variant.name: make_app(variant.install) for variant in chosen}
            cookies = {name: seed_cookie(app, name) for name, app in apps.items()}
            behaviour = check(apps, cookies)
            if behaviour["problems"]:
                raise SystemExit("bench_wsgi: a variant misbehaves:\n  " + "\n  ".join(behaviour["problems"]))
            cells: dict[tuple[str, str], tuple[flask.Flask, Environ]] = {}
            for name, app in apps.items():
                for scenario in SCENARIOS:
                    cookie = cookies[name] if scenario in ("a", "b") else None
                    cells[(name, scenario)] = (app, environ_for("/" + scenario, cookie))
            for app, environ in cells.values():  # warm up every cell once
                measure(app, environ, max(20, requests // 10))
            samples: dict[tuple[str, str], list[float]] = {key: [] for key in cells}
            order = list(cells)
            shuffler = random.Random(2026)
            for _ in range(rounds):
                shuffler.shuffle(order)  # no variant always runs right after a slow one
                for key in order:
                    app, environ = cells[key]
                    samples[key].append(measure(app, environ, requests))
        finally:
            for variant in chosen:
                variant.cleanup()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for (name, scenario), values in samples.items():
        results.setdefault(name, {})[scenario] = (statistics.median(values), min(values))
    return results, behaviour


def ratios(
    results: dict[str, dict[str, tuple[float, float]]], name: str, scenario: str
) -> tuple[float, float]:
    """Overhead of ``name`` over Flask's built-in overhead, by median and by minimum."""
    base, builtin, mine = (results[n][scenario] for n in (BARE, BUILTIN, name))
    return (
        (mine[0] - base[0]) / (builtin[0] - base[0]),
        (mine[1] - base[1]) / (builtin[1] - base[1]),
    )


def report(
    results: dict[str, dict[str, tuple[float, float]]], behaviour: dict[str, Any], command: str, quick: bool
) -> str:
    lines = [
        "# Flask (WSGI)",
        "",
        f"Command: `{command}`",
        "",
        f"Python {platform.python_version()}, Flask {_version('flask')}, Werkzeug {_version('werkzeug')},"
        f" Flask-Session {_version('flask-session')} on {platform.machine()}, {os.cpu_count()} CPUs;"
        f" run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "The same Flask app with each session interface, called through its WSGI callable with a",
        "prepared environ (no sockets, no test client), every variant in one run, in shuffled rounds.",
        "**Overhead** = variant minus the bare app (a session interface that hands the handler a",
        "plain dict and saves nothing); **ratio** = overhead divided by the overhead of Flask's",
        "built-in `SecureCookieSessionInterface` in the same scenario, by the same statistic.",
        "Compare ratios, not absolute figures. Redis is the machine's, on loopback.",
        "",
    ]
    if quick:
        lines += ["**Quick run** (`--quick`): too few rounds for the figures to mean much.", ""]
    base = results[BARE]
    builtin = results[BUILTIN]
    for scenario in SCENARIOS:
        lines += [
            f"## ({scenario}) {DESCRIPTIONS[scenario]}",
            "",
            "| variant | median µs | overhead | ratio | min µs | overhead | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        builtin_median = builtin[scenario][0] - base[scenario][0]
        builtin_min = builtin[scenario][1] - base[scenario][1]
        for name, values in results.items():
            median, fastest = values[scenario]
            if name == BARE:
                lines.append(f"| {name} | {median:.1f} | | | {fastest:.1f} | | |")
                continue
            over_median = median - base[scenario][0]
            over_min = fastest - base[scenario][1]
            lines.append(
                f"| {name} | {median:.1f} | {over_median:.1f} | {over_median / builtin_median:.2f}× "
                f"| {fastest:.1f} | {over_min:.1f} | {over_min / builtin_min:.2f}× |"
            )
        lines.append("")
    lines += [
        "## Set-Cookie per request",
        "",
        "From the untimed check before the run (which also reads (a)'s value and reads back every",
        "write of (b) and (d) through the cookie it set). Flask-Session's defaults make sessions",
        "permanent and refresh them on every request, so its reads write to Redis and set a cookie too.",
        "",
        "| variant | (a) read | (b) write | (c) untouched | (d) new + write |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, counts in behaviour["set_cookie"].items():
        lines.append(f"| {name} | " + " | ".join(f"{counts[s]:.2f}" for s in SCENARIOS) + " |")
    median, fastest = ratios(results, ENCRYPTED, "a")
    met = median <= 0.5 and fastest <= 0.5
    lines += [
        "",
        "## Target",
        "",
        "| target | median | min | verdict |",
        "|---|---:|---:|---|",
        f"| (a) read: encrypted CookieStore ≤ 0.5× Flask's built-in | {median:.2f}× | {fastest:.2f}× "
        f"| {'met' if met else '**not met**'} |",
        "",
    ]
    return "\n".join(lines)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40, help="rounds (each runs every variant once)")
    parser.add_argument("--requests", type=int, default=200, help="requests per variant per round")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 10 requests")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--write", metavar="PATH", help="also write the section into PATH")
    parser.add_argument("--json", metavar="PATH", help="also write the figures and checks as JSON")
    args = parser.parse_args()
    # The cookie-store variants have no revocation store on purpose; its start-up warning is noise here.
    logging.getLogger("sessionware").setLevel(logging.ERROR)
    rounds, requests = (2, 10) if args.quick else (args.rounds, args.requests)
    results, behaviour = run(rounds, requests, args.redis_url)
    command = ("python bench/bench_wsgi.py " + " ".join(sys.argv[1:])).strip()
    text = report(results, behaviour, command, args.quick)
    print(text)
    if args.write:
        write_section(args.write, "bench_wsgi", text)
    if args.json:
        ratio_table = {
            name: {s: ratios(results, name, s) for s in SCENARIOS} for name in results if name != BARE
        }
        Path(args.json).write_text(
            json.dumps({"results": results, "ratios": ratio_table, **behaviour}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
