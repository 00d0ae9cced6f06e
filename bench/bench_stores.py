"""Shared stores: per-request overhead and store commands against peers, and a scale run.

Part 1 (ASGI, in process, one run): scenarios (a)-(d) of bench_asgi.py for
sessionware's RedisStore and PostgresStore and starsessions' RedisStore, with
the store commands each request costs (Redis: INFO commandstats on a Redis of
the bench's own; PostgreSQL: statements, one per store call).

Part 2 (WSGI, in process): Flask's built-in session and Flask-Session's Redis
backend, for the commands per request (sessionware's WSGI adapter lands with
the WSGI work and joins this table then).

Part 3 (scale): N sessions (default 1,000,000) in Redis and in PostgreSQL, one
user among them with 1,000; memory or disk per session, and how long listing
and revoking all of that user's sessions take at 10,000 and at N sessions in
all.

Run: python bench/bench_stores.py [--scale N] [--write docs/benchmarks.md]
The bench starts its own Redis on a free loopback port and uses a table of its
own in PostgreSQL (127.0.0.1:5432, database test), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sessionware
from bench._report import write_section
from bench.bench_asgi import (
    DESCRIPTIONS,
    SCENARIOS,
    SECRET,
    make_app,
    noop_send,
    receive,
    scope_with,
    seed_cookie,
    starsessions_app,
)
from sessionware.stores.postgres import PostgresStore, migration_sql
from sessionware.stores.redis import RedisStore
from sessionware.typing import ASGIApp
from tests.servers import POSTGRES_DSN, RedisServer


class RedisCommands:
    """Counts the commands clients send to Redis (MONITOR; commands run inside scripts excluded)."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.count = 0
        self._seen: set[str] = set()
        self._client = redis.Redis.from_url(url, socket_timeout=None)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            for command in self._monitor.listen():
                text = str(command.get("command", ""))
                if text.startswith("ECHO bench-marker-"):
                    self._seen.add(text.split()[-1].removeprefix("bench-marker-"))
                elif command.get("client_type") != "lua" and not text.startswith(("CLIENT ", "HELLO")):
                    self.count += 1  # connection set-up (CLIENT SETINFO) is not a session command
        except (redis.RedisError, ValueError, AttributeError):
            return

    def settled(self) -> int:
        """The count once every command sent so far has been seen."""
        import uuid

        marker = uuid.uuid4().hex
        probe = redis.Redis.from_url(self.url)
        probe.echo(f"bench-marker-{marker}")
        probe.close()
        deadline = time.monotonic() + 10
        while marker not in self._seen and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count

    def close(self) -> None:
        self._monitor.connection.disconnect()
        self._client.close()


class Counted:
    """Counts calls to a sessionware store (one PostgreSQL statement each)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def load(self, key: str) -> Any:
        self.calls += 1
        return await self.inner.load(key)

    async def create(self, key: str, head: bytes, fields: Any, ttl: int, user: str | None) -> Any:
        self.calls += 1
        return await self.inner.create(key, head, fields, ttl, user)

    async def update(self, key: str, change: Any) -> Any:
        self.calls += 1
        return await self.inner.update(key, change)

    async def delete(self, key: str) -> Any:
        self.calls += 1
        return await self.inner.delete(key)


async def time_requests(app: ASGIApp, scope: dict[str, Any], requests: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(requests):
        await app(dict(scope), receive, noop_send)
    return (time.perf_counter_ns() - start) / requests / 1000


async def overheads(
    redis_url: str, table: str, rounds: int, requests: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    from redis.asyncio import Redis as AsyncRedis
    from starsessions.stores.redis import RedisStore as StarRedisStore

    pg_counted = Counted(PostgresStore(POSTGRES_DSN, table=table).asyncio())

    def sw(store: Any) -> Callable[[ASGIApp], ASGIApp]:
        return lambda app: sessionware.SessionMiddleware(app, secret_key_base=SECRET, store=store)

    star_store = StarRedisStore(connection=AsyncRedis.from_url(redis_url), prefix="star:")
    variants: dict[str, Callable[[ASGIApp], ASGIApp] | None] = {
        "no middleware": None,
        "starsessions RedisStore": lambda app: starsessions_app(app, star_store),
        "sessionware RedisStore": sw(RedisStore(redis_url, prefix="swbench:")),
        "sessionware PostgresStore": sw(pg_counted),
    }
    apps: dict[tuple[str, str], tuple[ASGIApp, Any]] = {}
    for name, build in variants.items():
        cookie = None if build is None else await seed_cookie(build)
        for scenario in SCENARIOS:
            inner = make_app(scenario)
            if build is None:

                async def plain(scope: Any, receive: Any, send: Any, inner: ASGIApp = inner) -> None:
                    scope["session"] = {"user": "alice"}
                    await inner(scope, receive, send)

                app: ASGIApp = plain
            else:
                app = build(inner)
            apps[(name, scenario)] = (app, scope_with(cookie if scenario in ("a", "b") else None))
    for app, scope in apps.values():
        await time_requests(app, scope, 20)
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in apps}
    order = list(apps)
    shuffler = random.Random(2026)
    for _ in range(rounds):
        shuffler.shuffle(order)
        for key in order:
            app, scope = apps[key]
            samples[key].append(await time_requests(app, scope, requests))
    timings: dict[str, dict[str, float]] = {}
    for (name, scenario), values in samples.items():
        timings.setdefault(name, {})[scenario] = statistics.median(values)
        timings.setdefault(name + " [min]", {})[scenario] = min(values)
    commands: dict[str, dict[str, float]] = {}
    set_cookies: dict[str, dict[str, float]] = {}
    counter = RedisCommands(redis_url)
    for (name, scenario), (app, scope) in apps.items():
        if name == "no middleware":
            continue
        before_redis, before_pg = counter.settled(), pg_counted.calls
        cookies_set = 0

        async def count_cookies(message: Any) -> None:
            nonlocal cookies_set
            if message["type"] == "http.response.start":
                cookies_set += any(name.lower() == b"set-cookie" for name, _ in message.get("headers", ()))

        for _ in range(100):
            await app(dict(scope), receive, count_cookies)
        set_cookies.setdefault(name, {})[scenario] = cookies_set / 100
        if name == "sessionware PostgresStore":
            commands.setdefault(name, {})[scenario] = (pg_counted.calls - before_pg) / 100
        else:
            commands.setdefault(name, {})[scenario] = (counter.settled() - before_redis) / 100
    counter.close()
    commands["Set-Cookie per request"] = set_cookies["sessionware RedisStore"]
    return timings, commands


def flask_commands(redis_url: str, requests: int = 200) -> dict[str, dict[str, float]]:
    """Redis commands per request of Flask-Session's Redis backend (Flask's own session: none)."""
    from flask import Flask, session
    from flask_session import Session as FlaskSession

    client = redis.Redis.from_url(redis_url)
    counter = RedisCommands(redis_url)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSION_TYPE="redis", SESSION_REDIS=client)
    FlaskSession(app)

    @app.get("/read")
    def read() -> str:
        return str(session.get("user"))

    @app.get("/write")
    def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return "ok"

    @app.get("/touch-nothing")
    def untouched() -> str:
        return "ok"

    test = app.test_client()
    test.get("/write")
    with_cookie = test.get_cookie("session")
    assert with_cookie is not None
    out: dict[str, float] = {}
    for scenario, path, cookie in (
        ("a", "/read", True),
        ("b", "/write", True),
        ("c", "/touch-nothing", False),
        ("d", "/write", False),
    ):
        before = counter.settled()
        for _ in range(requests):
            client_for = app.test_client()
            if cookie:
                client_for.set_cookie("session", with_cookie.value)
            client_for.get(path)
        out[scenario] = (counter.settled() - before) / requests
    counter.close()
    client.close()
    return {"Flask-Session RedisSessionInterface": out}


# -- scale -----------------------------------------------------------------------


Record = tuple[bytes, dict[str, str]]  # a session's head and fields


def populate_redis(store: RedisStore, start: int, stop: int, users: int, record: Record) -> None:
    from sessionware.stores._redis_scripts import CREATE_SCRIPT

    head, fields = record
    pipe = store.client.pipeline(transaction=False)
    for n in range(start, stop):
        group = f"g{n % users:06d}"
        user = f"{group}/user{n % users}"
        name, member = store._keys.session(f"{group}/s{n:09d}")
        pipe.evalsha(CREATE_SCRIPT.sha, 1, name, *store._keys.create(member, head, fields, 86_400, user))
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def populate_postgres(table: str, start: int, stop: int, users: int, record: Record) -> None:
    head, fields = record
    data = json.dumps(fields)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        with connection.cursor().copy(
            f"COPY {table} (key, head, data, user_key, expires_at) FROM STDIN"
        ) as copy:
            for n in range(start, stop):
                group = f"g{n % users:06d}"
                copy.write_row((f"{group}/s{n:09d}", head, data, f"{group}/user{n % users}", "2099-01-01"))
        connection.execute(f"ANALYZE {table}")


def add_heavy_user(store: Any, sessions: int, record: Record) -> str:
    user = "gheavy0/heavy"
    for n in range(sessions):
        store.create(f"gheavy0/h{n:06d}", *record, 86_400, user)
    return user


def timed(action: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def scale_run(total: int, redis_url: str, table: str) -> dict[str, Any]:
    head = sessionware._record.pack_head(
        1_800_000_000,
        1_800_000_000,
        1_800_000_000,
        b'{"uid":"someone","ua":"Mozilla/5.0 (X11; Linux x86_64)"}',
    )
    record: Record = (head, {"cart": "[1,2,3]", "theme": '"dark"'})
    results: dict[str, Any] = {"record_bytes": len(head) + sum(len(k) + len(v) for k, v in record[1].items())}
    users = max(1, total // 10)  # ten sessions per ordinary user

    store = RedisStore(redis_url, prefix="scale:")
    client = store.client
    client.flushall()
    base_memory = int(client.info("memory")["used_memory"])
    heavy = add_heavy_user(store, 1000, record)
    populate_redis(store, 0, 10_000 - 1000, users, record)
    results["redis_list_10k"] = timed(lambda: store.user_sessions(heavy))
    populate_redis(store, 10_000 - 1000, total - 1000, users, record)
    used = int(client.info("memory")["used_memory"]) - base_memory
    results["redis_bytes_per_session"] = used / total
    results["redis_list_total"] = timed(lambda: store.user_sessions(heavy))
    assert len(store.user_sessions(heavy)) == 1000
    results["redis_revoke"] = timed(lambda: store.delete_user_sessions(heavy, None), repeat=1)
    assert store.user_sessions(heavy) == []
    client.flushall()
    store.close()

    pg = PostgresStore(POSTGRES_DSN, table=table)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {table}")
    heavy = add_heavy_user(pg, 1000, record)
    populate_postgres(table, 0, 10_000 - 1000, users, record)
    results["pg_list_10k"] = timed(lambda: pg.user_sessions(heavy))
    populate_postgres(table, 10_000 - 1000, total - 1000, users, record)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        size = connection.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
    assert size is not None
    results["pg_bytes_per_session"] = int(size[0]) / total
    results["pg_list_total"] = timed(lambda: pg.user_sessions(heavy))
    assert len(pg.user_sessions(heavy)) == 1000
    results["pg_revoke"] = timed(lambda: pg.delete_user_sessions(heavy, None), repeat=1)
    assert pg.user_sessions(heavy) == []
    pg.close()
    return results


def report(
    timings: dict[str, dict[str, float]],
    commands: dict[str, dict[str, float]],
    scale: dict[str, Any],
    total: int,
    command: str,
) -> str:
    base = timings["no middleware"]
    star = timings["starsessions RedisStore"]
    base_min = timings["no middleware [min]"]
    star_min = timings["starsessions RedisStore [min]"]
    lines = [
        "# Shared stores",
        "",
        f"Command: `{command}`; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "In-process ASGI requests as in the cookie benchmark above, against a Redis the bench starts",
        "on loopback and the PostgreSQL on 127.0.0.1:5432. Median and minimum over rounds; **ratio** = overhead",
        "divided by starsessions RedisStore's overhead in the same scenario. Store commands are",
        "round trips: the commands clients send (Redis MONITOR, commands run inside a Lua script not",
        "counted) or SQL statements. Every request here falls within `touch_interval`.",
        "",
    ]
    for scenario in SCENARIOS:
        lines += [
            f"## ({scenario}) {DESCRIPTIONS[scenario]}",
            "",
            "| variant | median µs | overhead | ratio | min µs | overhead | ratio | store commands/request |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in (n for n in timings if not n.endswith(" [min]")):
            median, fastest = timings[name][scenario], timings[name + " [min]"][scenario]
            if name == "no middleware":
                lines.append(f"| {name} | {median:.0f} | | | {fastest:.0f} | | | |")
                continue
            over, over_min = median - base[scenario], fastest - base_min[scenario]
            ratio = over / (star[scenario] - base[scenario])
            ratio_min = over_min / (star_min[scenario] - base_min[scenario])
            lines.append(
                f"| {name} | {median:.0f} | {over:.0f} | {ratio:.2f}× | {fastest:.0f} | {over_min:.0f} "
                f"| {ratio_min:.2f}× | {commands[name][scenario]:.2f} |"
            )
        lines.append("")
    flask = commands.get("Flask-Session RedisSessionInterface")
    if flask:
        lines += [
            "## Flask-Session's Redis backend (WSGI)",
            "",
            "Redis commands per request, for comparison (Flask's built-in session uses no store):",
            "",
            "| variant | (a) read | (b) write | (c) untouched | (d) new + write |",
            "|---|---:|---:|---:|---:|",
            "| Flask-Session RedisSessionInterface | "
            + " | ".join(f"{flask[s]:.2f}" for s in SCENARIOS)
            + " |",
            "",
        ]
    redis_a = commands["sessionware RedisStore"]["a"]
    redis_b = commands["sessionware RedisStore"]["b"]
    pg_a, pg_b = commands["sessionware PostgresStore"]["a"], commands["sessionware PostgresStore"]["b"]
    cookies_a = commands["Set-Cookie per request"]["a"]

    def star_ratio(scenario: str) -> tuple[float, float]:
        name = "sessionware RedisStore"
        median = (timings[name][scenario] - base[scenario]) / (star[scenario] - base[scenario])
        fastest = (timings[name + " [min]"][scenario] - base_min[scenario]) / (
            star_min[scenario] - base_min[scenario]
        )
        return median, fastest

    redis_ratio, redis_ratio_min = star_ratio("a")
    write_ratio, write_ratio_min = star_ratio("b")
    lines += [
        "## Scale",
        "",
        f"{total:,} sessions (records of {scale['record_bytes']} bytes, ten per user), plus one user with",
        "1,000 sessions. Listing and revoking time that user; best of 5 for listings, one revocation.",
        "",
        "| | Redis | PostgreSQL |",
        "|---|---:|---:|",
        f"| memory / disk per session | {scale['redis_bytes_per_session']:.0f} B (used_memory) | {scale['pg_bytes_per_session']:.0f} B (table + indexes) |",
        f"| list 1,000 sessions at 10,000 in all | {scale['redis_list_10k']:.1f} ms | {scale['pg_list_10k']:.1f} ms |",
        f"| list 1,000 sessions at {total:,} in all | {scale['redis_list_total']:.1f} ms | {scale['pg_list_total']:.1f} ms |",
        f"| revoke all 1,000 | {scale['redis_revoke']:.1f} ms | {scale['pg_revoke']:.1f} ms |",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---:|---|",
        f"| Redis (a): one Redis command, no Set-Cookie | {redis_a:.2f} commands, {cookies_a:.2f} Set-Cookie | {verdict(redis_a == 1 and cookies_a == 0)} |",
        f"| Redis (a): overhead ≤ 0.45× starsessions RedisStore | {redis_ratio:.2f}× median, {redis_ratio_min:.2f}× min | {verdict(redis_ratio <= 0.45 and redis_ratio_min <= 0.45)} |",
        f"| Redis (b): a write is one round trip (a read, then one script) | {redis_b:.2f} commands | {verdict(redis_b == 2)} |",
        f"| Redis (b): overhead ≤ 0.5× starsessions RedisStore | {write_ratio:.2f}× median, {write_ratio_min:.2f}× min | {verdict(write_ratio <= 0.5 and write_ratio_min <= 0.5)} |",
        f"| PostgreSQL: one statement per read, one per write | (a) {pg_a:.2f}, (b) {pg_b:.2f} statements | {verdict(pg_a == 1 and pg_b == 2)} |",
        f"| revoke-all of 1,000 sessions < 50 ms, Redis | {scale['redis_revoke']:.1f} ms | {verdict(scale['redis_revoke'] < 50)} |",
        f"| revoke-all of 1,000 sessions < 50 ms, PostgreSQL | {scale['pg_revoke']:.1f} ms | {verdict(scale['pg_revoke'] < 50)} |",
        "",
    ]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=1_000_000, help="sessions in the scale run")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--write", metavar="PATH", help="also write the section into PATH")
    args = parser.parse_args()
    table = f"sessionware_bench_{os.getpid()}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        connection.execute(migration_sql(table))
    server = RedisServer().start()
    try:
        timings, commands = asyncio.run(overheads(server.url, table, args.rounds, args.requests))
        commands.update(flask_commands(server.url))
        scale = scale_run(args.scale, server.url, table)
    finally:
        server.close()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
    command = "python bench/bench_stores.py " + " ".join(sys.argv[1:])
    text = report(timings, commands, scale, args.scale, command.strip())
    print(text)
    if args.write:
        write_section(args.write, "bench_stores", text)


if __name__ == "__main__":
    main()
