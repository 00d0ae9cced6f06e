"""Per-request overhead of Django session engines, in process, through the WSGI handler.

One Django project (one view per scenario, Django's own ``SessionMiddleware``)
served by one ``WSGIHandler`` per session engine, each called directly with a
prepared environ and a no-op ``start_response``; the response is iterated and
closed, as a server would. All variants run in one process, in one run, in many
short rounds in a shuffled order: the ratios between them are what this
measures (the machine is shared and noisy). Per variant: the median and the
minimum over rounds of the mean time per request.

The baseline ("bare Django") is the same project with a middleware that hands
the view a plain dict holding ``{"user": "alice"}`` as ``request.session`` and
saves nothing, so overhead = variant minus that is the whole cost of a session.

Variants: Django's ``cache`` backend on ``RedisCache`` (Django's own Redis
cache, redis-py underneath), Django's ``signed_cookies`` backend, and
``sessionware.django`` on ``RedisStore``. Redis is the one at --redis-url
(default redis://127.0.0.1:6379/0); the keys the bench writes carry a prefix of
its own and are deleted afterwards.

Scenarios:
  a  valid cookie, the view reads one key
  b  valid cookie, the view writes one key (a new value each request)

Before timing, an untimed pass checks every variant: (a) reads the seeded
value, (b)'s writes are read back, and Redis commands per request are counted
(INFO commandstats, before and after).

Run: python bench/bench_django.py [--rounds N] [--requests N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
import redis
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` importable as a script

from bench._report import write_section
from bench.bench_wsgi import consume, environ_for, measure

SECRET = "bench-secret-" + "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
PREFIX = f"bench-django-{uuid.uuid4().hex[:8]}:"
SCENARIOS = ("a", "b")
DESCRIPTIONS = {"a": "valid cookie, the view reads one key", "b": "valid cookie, the view writes one key"}
BARE = "bare Django (no session)"
CACHE = "Django cache backend (RedisCache)"
SIGNED = "Django signed_cookies backend"
SESSIONWARE = "sessionware.django (RedisStore)"
ENGINES = {
    CACHE: "django.contrib.sessions.backends.cache",
    SIGNED: "django.contrib.sessions.backends.signed_cookies",
    SESSIONWARE: "sessionware.django",
}


class PlainSession:
    """The baseline: a plain dict as ``request.session``, nothing verified or saved."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        request.session = {"user": "alice"}
        return self.get_response(request)


def configure(redis_url: str) -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": PREFIX + "cache",
            }
        },
        SESSIONWARE={"store": redis_url, "store_options": {"prefix": PREFIX + "sw:"}},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


def views() -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path

    counter = 0

    def seed(request: Any) -> HttpResponse:
        request.session["user"] = "alice"
        return HttpResponse(b"seeded")

    def read(request: Any) -> HttpResponse:
        return HttpResponse(str(request.session["user"]).encode())

    def write(request: Any) -> HttpResponse:
        nonlocal counter
        counter += 1
        request.session["n"] = counter
        return HttpResponse(b"ok")

    def written(request: Any) -> HttpResponse:
        return HttpResponse(str(request.session.get("n")).encode())

    return [path("seed", seed), path("a", read), path("b", write), path("n", written)]


urlpatterns: list[Any] = []


def handler(name: str) -> Any:
    """A WSGIHandler whose middleware chain holds the engine ``name`` names (read at load)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    if name == BARE:
        with override_settings(MIDDLEWARE=[f"{__name__}.PlainSession"]):
            return WSGIHandler()
    with override_settings(SESSION_ENGINE=ENGINES[name]):
        return WSGIHandler()


def call(app: Any, path: str, cookie: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
    reply: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        reply["status"], reply["headers"] = status, list(headers)
        return None

    body = consume(app(environ_for(path, cookie), start_response))
    return reply["status"], reply["headers"], body


def seed_cookie(app: Any, name: str) -> str | None:
    if name == BARE:
        return None
    status, headers, _ = call(app, "/seed")
    cookies = [value for header, value in headers if header.lower() == "set-cookie"]
    assert status.startswith("200"), (name, status)
    assert len(cookies) == 1, (name, headers)
    return cookies[0].split(";", 1)[0]


def redis_commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(entry["calls"]) for name, entry in stats.items() if name != "cmdstat_info")


def check(
    apps: dict[str, Any], cookies: dict[str, str | None], client: redis.Redis, requests: int = 50
) -> dict[str, dict[str, float]]:
    """Redis commands per request of each variant and scenario; exits if a variant misbehaves."""
    problems: list[str] = []
    counts: dict[str, dict[str, float]] = {}
    for name, app in apps.items():
        if name == BARE:
            continue
        for scenario in SCENARIOS:
            before = redis_commands(client)
            for _ in range(requests):
                status, headers, body = call(app, "/" + scenario, cookies[name])
                if not status.startswith("200"):
                    problems.append(f"{name} ({scenario}): {status}")
                if scenario == "a" and body != b"alice":
                    problems.append(f"{name} (a): read {body!r}, not the seeded value")
            counts.setdefault(name, {})[scenario] = (redis_commands(client) - before) / requests
            if scenario == "b":
                cookie = cookies[name]
                set_cookie = [v for h, v in headers if h.lower() == "set-cookie"]
                if set_cookie:  # the signed cookie backend carries the data in the cookie
                    cookie = set_cookie[0].split(";", 1)[0]
                    cookies[name] = cookie
                _, _, back = call(app, "/n", cookie)
                if not back.isdigit():
                    problems.append(f"{name} (b): the write did not stick ({back!r})")
    if problems:
        raise SystemExit("bench_django: a variant misbehaves:\n  " + "\n  ".join(problems))
    return counts


def run(rounds: int, requests: int, redis_url: str) -> tuple[dict[str, dict[str, tuple[float, float]]], Any]:
    client = redis.Redis.from_url(redis_url)
    try:
        apps = {name: handler(name) for name in (BARE, CACHE, SIGNED, SESSIONWARE)}
        cookies = {name: seed_cookie(app, name) for name, app in apps.items()}
        commands = check(apps, cookies, client)
        cells = {
            (name, scenario): (app, environ_for("/" + scenario, cookies[name]))
            for name, app in apps.items()
            for scenario in SCENARIOS
        }
        for app, environ in cells.values():
            measure(app, environ, max(20, requests // 10))
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in cells}
        order = list(cells)
        shuffler = random.Random(2026)
        for _ in range(rounds):
            shuffler.shuffle(order)
            for key in order:
                app, environ = cells[key]
                samples[key].append(measure(app, environ, requests))
    finally:
        for key in client.scan_iter(match=PREFIX + "*", count=1000):
            client.delete(key)
        client.close()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for (name, scenario), values in samples.items():
        results.setdefault(name, {})[scenario] = (statistics.median(values), min(values))
    return results, commands


def ratio(
    results: dict[str, dict[str, tuple[float, float]]], name: str, peer: str, scenario: str
) -> tuple[float, float]:
    base, theirs, mine = (results[n][scenario] for n in (BARE, peer, name))
    return (mine[0] - base[0]) / (theirs[0] - base[0]), (mine[1] - base[1]) / (theirs[1] - base[1])


def report(results: dict[str, dict[str, tuple[float, float]]], commands: Any, command: str) -> str:
    lines = [
        "# Django (WSGI)",
        "",
        f"Command: `{command}`",
        "",
        f"Python {platform.python_version()}, Django {django.get_version()}, redis-py {redis.__version__}"
        f" on {platform.machine()}, {os.cpu_count()} CPUs; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "One Django project (Django's own `SessionMiddleware`) with each session engine, called through",
        "its `WSGIHandler` with a prepared environ, every variant in one run, in shuffled rounds.",
        "**Overhead** = variant minus bare Django (a middleware that hands the view a plain dict);",
        "**ratio** = overhead divided by the overhead of Django's `cache` backend on `RedisCache` in the",
        "same scenario, by the same statistic. Redis is the machine's, on loopback.",
        "",
    ]
    base, peer = results[BARE], results[CACHE]
    for scenario in SCENARIOS:
        lines += [
            f"## ({scenario}) {DESCRIPTIONS[scenario]}",
            "",
            "| variant | median µs | overhead | ratio | min µs | overhead | ratio | Redis commands/request (script commands included) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        peer_median = peer[scenario][0] - base[scenario][0]
        peer_min = peer[scenario][1] - base[scenario][1]
        for name, values in results.items():
            median, fastest = values[scenario]
            if name == BARE:
                lines.append(f"| {name} | {median:.1f} | | | {fastest:.1f} | | | |")
                continue
            over_median, over_min = median - base[scenario][0], fastest - base[scenario][1]
            lines.append(
                f"| {name} | {median:.1f} | {over_median:.1f} | {over_median / peer_median:.2f}× "
                f"| {fastest:.1f} | {over_min:.1f} | {over_min / peer_min:.2f}× "
                f"| {commands[name][scenario]:.2f} |"
            )
        lines.append("")
    lines += ["## Targets", "", "| target | median | min | verdict |", "|---|---:|---:|---|"]
    for scenario, limit in (("a", 0.6), ("b", 0.5)):
        median, fastest = ratio(results, SESSIONWARE, CACHE, scenario)
        verdict = "met" if median <= limit and fastest <= limit else "**not met**"
        lines.append(
            f"| ({scenario}) sessionware.django on Redis ≤ {limit}× Django's cache backend on RedisCache "
            f"| {median:.2f}× | {fastest:.2f}× | {verdict} |"
        )
    lines += [
        "",
        "sessionware.django offers no cookie store (a cookie-only session cannot be listed or",
        "revoked), so Django's `signed_cookies` row is for reference only.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30, help="rounds (each runs every variant once)")
    parser.add_argument("--requests", type=int, default=100, help="requests per variant per round")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report to PATH")
    args = parser.parse_args()
    configure(args.redis_url)
    urlpatterns[:] = views()
    results, commands = run(args.rounds, args.requests, args.redis_url)
    command = "python bench/bench_django.py" + (f" --write {args.write}" if args.write else "")
    text = report(results, commands, command)
    print(text)
    if args.write:
        write_section(args.write, "bench_django", text)


if __name__ == "__main__":
    main()
