"""End to end: session middlewares behind real HTTP servers, loaded by wrk over loopback.

Every variant is the same small app (``tests/live_apps.py``) with a different
session keeper, served by a real server on 127.0.0.1 (``tests/live.py``):

- ASGI: Starlette under uvicorn, one worker, ``--loop uvloop --http httptools``;
- WSGI: Flask under gunicorn, one gthread worker, ``--threads 16``.

wrk (``bench/wrk_session.lua``) drives 16 keep-alive connections for a few
seconds per run. Scenarios:

  a  a valid cookie per request (rotating over 16 seeded sessions), the handler reads one key
  b  the same, the handler writes one key (a new value each request)
  e  all 16 connections carry ONE session's cookie, every request writes it

Every server runs at once; the runs -- every (variant, scenario), ``--repeats``
times -- go in a shuffled order, so drift on the machine hits all variants
alike. Per variant and scenario: requests per second (median over repeats),
its ratio to the no-middleware baseline of the same stack, p50 and p99
latency (wrk's, median over repeats), responses wrk counts as errors (status
400 and above; the only ones these apps send are 503s), and CPU seconds per
request of the app server (utime + stime from /proc of its processes) and of
the store server (Redis, PostgreSQL), over all repeats.

Store commands per request come from an untimed pass of an exact number of
requests (``--count`` each, over 16 keep-alive connections): Redis commands
clients sent (MONITOR, commands a Lua script runs excluded) and all commands
Redis ran (INFO commandstats delta, script commands included); PostgreSQL
statements (pg_stat_statements, top-level statements).

The stores are the bench's own: a Redis on a free loopback port
(``tests/servers.py``'s ``RedisServer``, no persistence) and a PostgreSQL
instance initialised for the run (``PostgresServer``, ``fsync=off``, with
pg_stat_statements preloaded), both removed afterwards; SQLite files in a
temporary directory.

Run: python bench/bench_http.py [--duration S] [--repeats N] [--only KEY,...]
                                [--wrk-threads N] [--quick] [--write docs/benchmarks.md] [--json PATH]
Keys for --only: asgi:starlette, asgi:starsessions, asgi:sw-cookie, asgi:sw-sqlite,
asgi:sw-redis, asgi:sw-postgres, wsgi:flask, wsgi:flask-session, wsgi:sw-cookie,
wsgi:sw-sqlite, wsgi:sw-redis, wsgi:sw-postgres (each stack's baseline always runs).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` and `tests` importable

from bench._report import write_section
from sessionware.stores.postgres import PostgresStore
from tests import live
from tests.servers import PostgresServer, RedisServer

SECRET = "bench-secret-" + "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
LUA = Path(__file__).resolve().parent / "wrk_session.lua"
SCENARIOS = ("a", "b", "e")
DESCRIPTIONS = {
    "a": "valid cookie (16 sessions, rotating), handler reads one key",
    "b": "valid cookie (16 sessions, rotating), handler writes one key",
    "e": "16 connections sharing ONE session's cookie, every request writes it",
}
CONNECTIONS = 16
GUNICORN_THREADS = 16
WRK = shutil.which("wrk") or "/usr/bin/wrk"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
GIT = shutil.which("git") or "/usr/bin/git"


@dataclass(frozen=True)
class Variant:
    key: str  # "asgi:sw-redis"
    name: str
    session: str  # SW_LIVE_SESSION
    store: str | None = None  # "cookie", "sqlite", "redis", "postgres"; None: a peer's own
    redis: bool = False  # talks to the bench's Redis

    @property
    def stack(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def baseline(self) -> bool:
        return self.session == "none"


VARIANTS = [
    Variant("asgi:none", "no middleware", "none"),
    Variant("asgi:starlette", "Starlette SessionMiddleware", "starlette"),
    Variant("asgi:starsessions", "starsessions 2.2.1 RedisStore", "starsessions", redis=True),
    Variant("asgi:sw-cookie", "sessionware CookieStore (encrypted)", "sessionware", "cookie"),
    Variant("asgi:sw-sqlite", "sessionware SQLiteStore", "sessionware", "sqlite"),
    Variant("asgi:sw-redis", "sessionware RedisStore", "sessionware", "redis", redis=True),
    Variant("asgi:sw-postgres", "sessionware PostgresStore", "sessionware", "postgres"),
    Variant("wsgi:none", "bare Flask (no session)", "none"),
    Variant("wsgi:flask", "Flask SecureCookieSessionInterface", "flask"),
    Variant("wsgi:flask-session", "Flask-Session 0.8.0 RedisSessionInterface", "flask-session", redis=True),
    Variant("wsgi:sw-cookie", "sessionware CookieStore (encrypted)", "sessionware", "cookie"),
    Variant("wsgi:sw-sqlite", "sessionware SQLiteStore", "sessionware", "sqlite"),
    Variant("wsgi:sw-redis", "sessionware RedisStore", "sessionware", "redis", redis=True),
    Variant("wsgi:sw-postgres", "sessionware PostgresStore", "sessionware", "postgres"),
]


# -- the stores' own servers, and what they count ------------------------------------------


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: live.cpu_seconds([pid]) for pid in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the processes used in between (a process that appeared counts from zero)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class RedisCounter:
    """What one Redis ran: top-level commands (MONITOR, not a script's) and all (commandstats)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.top_level = 0
        self._markers: set[str] = set()
        self._monitor = socket.create_connection(("127.0.0.1", port))
        self._monitor.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while chunk := self._monitor.recv(1 << 20):
                buffer += chunk
                *lines, buffer = buffer.split(b"\r\n")
                for line in lines:
                    self._seen(line.decode("latin-1"))

    def _seen(self, line: str) -> None:
        # +1700000000.123456 [0 127.0.0.1:50000] "EVALSHA" "..."   ([0 lua] inside a script)
        found = re.match(r'\+\S+ \[\d+ ([^\]]*)\] "([^"]*)"(?: "([^"]*)")?', line)
        if found is None:
            return
        client, command, first = found.group(1), found.group(2).upper(), found.group(3) or ""
        if command == "ECHO" and first.startswith("bench-marker-"):
            self._markers.add(first)
        elif client != "lua" and command != "INFO":
            self.top_level += 1

    def _ask(self, command: bytes) -> bytes:
        """One inline command on a fresh connection (no client set-up commands); its reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(command + b"\r\n")
            reply = b""
            while b"\r\n" not in reply:
                reply += conn.recv(1 << 20)
            first, _, rest = reply.partition(b"\r\n")
            if first.startswith(b"$"):  # a bulk string: read all of it
                while len(rest) < int(first[1:]) + 2:
                    rest += conn.recv(1 << 20)
            return rest if first.startswith(b"$") else first

    def settled(self) -> int:
        """The top-level count once every command sent so far has come through MONITOR."""
        marker = f"bench-marker-{uuid.uuid4().hex}"
        self._ask(f"ECHO {marker}".encode())
        deadline = time.monotonic() + 10
        while marker not in self._markers:
            if time.monotonic() > deadline:
                raise RuntimeError("bench_http: MONITOR fell behind by more than 10 s")
            time.sleep(0.005)
        return self.top_level

    def all_commands(self) -> int:
        """Calls of every command Redis ran, script commands included (bar INFO/ECHO/MONITOR)."""
        text = self._ask(b"INFO commandstats").decode("latin-1")
        total = 0
        for name, calls in re.findall(r"cmdstat_([^:]+):calls=(\d+)", text):
            if name not in ("info", "echo", "monitor"):
                total += int(calls)
        return total

    def close(self) -> None:
        self._monitor.close()


class PostgresCounter:
    """Top-level statements the bench's own PostgreSQL ran (pg_stat_statements)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._connection = psycopg.connect(dsn, autocommit=True)

    def statements(self) -> int:
        row = self._connection.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat%'"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self._connection.close()


def start_postgres() -> PostgresServer:
    """A PostgreSQL of the bench's own, with pg_stat_statements loaded."""
    server = PostgresServer().init().start()
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server.restart()
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")
    return server


# -- load ----------------------------------------------------------------------------------


@dataclass
class Target:
    variant: Variant
    server: live.LiveServer
    cookies: list[str] = field(default_factory=list)  # 16 sessions
    shared: str = ""  # one more, for (e)
    seeded_at: float = 0.0  # time.monotonic() of the seeding

    def cookies_for(self, scenario: str) -> list[str]:
        return [self.shared] if scenario == "e" else self.cookies


#: Cookies older than this are made afresh before a run. wrk sends the cookies it is given,
#: never the ones responses set: a cookie older than the session's touch interval (60 s) would
#: make every request of a cookie store re-issue it, which a browser -- sending the new one --
#: never causes.
FRESH_FOR = 30


def wrk(target: Target, scenario: str, seconds: int, threads: int) -> dict[str, Any]:
    if time.monotonic() - target.seeded_at > FRESH_FOR:
        seed(target)
    mode = "read" if scenario == "a" else "write"
    command = [
        WRK,
        f"-t{threads}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        target.server.url("/"),
        "--",
        mode,
        *target.cookies_for(scenario),
    ]
    done = subprocess.run(  # noqa: S603 - our own arguments: the cookies the app itself made
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("wrk-json "):
            result: dict[str, Any] = json.loads(line.removeprefix("wrk-json "))
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def drive(target: Target, scenario: str, requests: int) -> Counter[int]:
    """Exactly ``requests`` requests of ``scenario`` over 16 keep-alive connections; their statuses."""
    cookies = target.cookies_for(scenario)
    per_connection = requests // CONNECTIONS

    def connection(k: int) -> Counter[int]:
        statuses: Counter[int] = Counter()
        conn = http.client.HTTPConnection("127.0.0.1", target.server.port, timeout=30)
        try:
            for j in range(per_connection):
                i = j * CONNECTIONS + k
                path = "/read" if scenario == "a" else f"/write/{i + 1}"
                conn.request("GET", path, headers={"Cookie": cookies[i % len(cookies)]})
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
        finally:
            conn.close()
        return statuses

    total: Counter[int] = Counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for statuses in pool.map(connection, range(CONNECTIONS)):
            total.update(statuses)
    return total


def seed(target: Target) -> None:
    """16 sessions and a shared one, made through the app; then check reads and writes work."""
    port = target.server.port
    target.cookies.clear()
    target.seeded_at = time.monotonic()
    for n in range(CONNECTIONS + 1):
        reply = live.get(port, "/seed")
        if reply.status != 200:
            raise SystemExit(
                f"{target.variant.name}: /seed answered {reply.status}\n{target.server.stderr_tail()}"
            )
        header = reply.header("set-cookie")
        if header is None and not target.variant.baseline:
            raise SystemExit(f"{target.variant.name}: /seed set no cookie")
        cookie = "session=none" if header is None else header.split(";", 1)[0]
        if n < CONNECTIONS:
            target.cookies.append(cookie)
        else:
            target.shared = cookie
    for cookie in [*target.cookies, target.shared]:
        read = live.get(port, "/read", cookie)
        written = live.get(port, "/write/1", cookie)
        if read.status != 200 or read.body != b"alice" or written.status != 200:
            raise SystemExit(
                f"{target.variant.name}: /read gave {read.status} {read.body!r}, /write/1 gave "
                f"{written.status}\n{target.server.stderr_tail()}"
            )


# -- the run -------------------------------------------------------------------------------


@dataclass
class Cell:
    runs: list[dict[str, Any]] = field(default_factory=list)  # wrk results, plus cpu
    commands: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def environment(chosen: list[Variant]) -> Iterator[dict[str, Any]]:
    """The stores' servers and every variant's app server, all up; everything stopped after."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionware-bench-http-"))
        found: dict[str, Any] = {"targets": {}}
        if any(v.redis for v in chosen):
            redis_server = RedisServer().start()
            stack.callback(redis_server.close)
            found["redis"] = redis_server
        if any(v.store == "postgres" for v in chosen):
            pg = start_postgres()
            stack.callback(pg.close)
            found["postgres"] = pg
            with psycopg.connect(pg.dsn) as connection:
                row = connection.execute("SHOW server_version").fetchone()
                found["postgres_version"] = str(row[0]) if row else "?"
        for variant in chosen:
            env = {"SW_LIVE_SESSION": variant.session, "SW_LIVE_SECRET": SECRET}
            prefix = f"bench-{variant.key.replace(':', '-')}:"
            if variant.redis:
                env.update(SW_LIVE_REDIS=found["redis"].url, SW_LIVE_PREFIX=prefix)
            if variant.store == "cookie":
                env["SW_LIVE_STORE"] = "cookie"
            elif variant.store == "sqlite":
                env["SW_LIVE_STORE"] = f"sqlite:///{tmp}/{variant.stack}.db"
            elif variant.store == "redis":
                env["SW_LIVE_STORE"] = found["redis"].url
            elif variant.store == "postgres":
                table = f"bench_{variant.stack}"
                migrating = PostgresStore(found["postgres"].dsn, table=table)
                migrating.migrate()
                migrating.close()
                env.update(SW_LIVE_STORE=found["postgres"].dsn, SW_LIVE_TABLE=table)
            if variant.stack == "asgi":
                server = live.uvicorn(env, workers=1)
            else:
                server = live.gunicorn(env, workers=1, threads=GUNICORN_THREADS)
            stack.callback(server.close)
            server.start()
            target = Target(variant, server)
            seed(target)
            found["targets"][variant.key] = target
        yield found


def store_pids(found: dict[str, Any]) -> list[int]:
    pids = []
    if "redis" in found:
        pids.append(found["redis"].process.pid)
    if "postgres" in found:
        pids.extend(live.process_tree(found["postgres"].pid()))
    return pids


def count_commands(found: dict[str, Any], cells: dict[tuple[str, str], Cell], requests: int) -> None:
    redis_counter = RedisCounter(found["redis"].port) if "redis" in found else None
    pg_counter = PostgresCounter(found["postgres"].dsn) if "postgres" in found else None
    try:
        for (key, scenario), cell in cells.items():
            target: Target = found["targets"][key]
            if not (target.variant.redis or target.variant.store == "postgres"):
                continue
            before = (
                redis_counter.settled() if redis_counter else 0,
                redis_counter.all_commands() if redis_counter else 0,
                pg_counter.statements() if pg_counter else 0,
            )
            sent = sum(drive(target, scenario, requests).values())
            if target.variant.redis and redis_counter is not None:
                cell.commands["redis"] = (redis_counter.settled() - before[0]) / sent
                cell.commands["redis_all"] = (redis_counter.all_commands() - before[1]) / sent
            if target.variant.store == "postgres" and pg_counter is not None:
                cell.commands["sql"] = (pg_counter.statements() - before[2]) / sent
    finally:
        if redis_counter is not None:
            redis_counter.close()
        if pg_counter is not None:
            pg_counter.close()


def run(args: argparse.Namespace, chosen: list[Variant]) -> tuple[dict[tuple[str, str], Cell], str]:
    """Every cell's runs and store commands, and the PostgreSQL version (if one ran)."""
    cells = {(v.key, s): Cell() for v in chosen for s in SCENARIOS}
    with environment(chosen) as found:
        targets: dict[str, Target] = found["targets"]
        for key, scenario in cells if args.warmup else ():  # warm-up, untimed
            wrk(targets[key], scenario, args.warmup, args.wrk_threads)
        count_commands(found, cells, args.count)
        order = list(cells)
        shuffler = random.Random(2026)
        for _ in range(args.repeats):
            shuffler.shuffle(order)
            for key, scenario in order:
                target = targets[key]
                app_before = cpu_by_pid(target.server.pids())
                store_before = cpu_by_pid(store_pids(found))
                result = wrk(target, scenario, args.duration, args.wrk_threads)
                result["app_cpu"] = cpu_delta(app_before, cpu_by_pid(target.server.pids()))
                result["store_cpu"] = cpu_delta(store_before, cpu_by_pid(store_pids(found)))
                cells[(key, scenario)].runs.append(result)
        return cells, found.get("postgres_version", "(not run)")


# -- the report ----------------------------------------------------------------------------


def summary(cell: Cell) -> dict[str, float]:
    runs = cell.runs
    requests = sum(r["requests"] for r in runs)
    return {
        "rps": statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in runs),
        "p50": statistics.median(r["p50_us"] for r in runs) / 1000,
        "p99": statistics.median(r["p99_us"] for r in runs) / 1000,
        "errors": sum(r["status_errors"] for r in runs),
        "socket_errors": sum(r["connect_errors"] + r["read_errors"] + r["write_errors"] for r in runs),
        "timeouts": sum(r["timeouts"] for r in runs),
        "requests": requests,
        "app_cpu": sum(r["app_cpu"] for r in runs) / requests * 1e6,
        "store_cpu": sum(r["store_cpu"] for r in runs) / requests * 1e6,
    }


def machine(postgres: str) -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    found = re.search(r"v=(\S+)", _output(REDIS_SERVER, "--version"))
    wrk_version = _output(WRK, "--version").split()
    return (
        f"Python {platform.python_version()} on {platform.machine()} ({model}), {os.cpu_count()} CPUs, "
        f"Linux {platform.release()}; uvicorn {version('uvicorn')}, uvloop {version('uvloop')}, "
        f"httptools {version('httptools')}, gunicorn {version('gunicorn')}, Starlette "
        f"{version('starlette')}, Flask {version('flask')}, wrk {wrk_version[1] if len(wrk_version) > 1 else '?'}, "
        f"Redis {found.group(1) if found else '?'}, PostgreSQL {postgres}"
    )


def measured_code() -> str:
    """Which sessionware the servers ran: its directory, and the commit if it is a git checkout."""
    home = live.SESSIONWARE_HOME
    commit = _output(GIT, "-C", str(home), "rev-parse", "--short", "HEAD").strip()
    if not commit:
        return f"sessionware from `{home}`"
    dirty = _output(GIT, "-C", str(home), "status", "--porcelain", "--", ".").strip()
    return f"sessionware at commit {commit}{' with uncommitted changes' if dirty else ''} (`{home}`)"


def notes(cells: dict[tuple[str, str], Cell], chosen: list[Variant]) -> list[str]:
    """A line for every variant and scenario whose responses included errors."""
    lines = []
    for variant in chosen:
        for scenario in SCENARIOS:
            s = summary(cells[(variant.key, scenario)])
            if s["errors"] or s["socket_errors"] or s["timeouts"]:
                lines.append(
                    f"- {variant.stack.upper()} {variant.name}, ({scenario}): {s['errors']:.0f} of "
                    f"{s['requests']:.0f} responses were errors ({s['errors'] / s['requests']:.2%}), "
                    f"{s['socket_errors']:.0f} socket errors, {s['timeouts']:.0f} timeouts."
                )
    return lines


def _output(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed tools
    return done.stdout


def commands_text(cell: Cell, key: str) -> str:
    value = cell.commands.get(key)
    return "-" if value is None else f"{value:.2f}"


def report(
    cells: dict[tuple[str, str], Cell],
    chosen: list[Variant],
    args: argparse.Namespace,
    command: str,
    postgres: str,
) -> str:
    lines = [
        "# End to end over HTTP (uvicorn, gunicorn, wrk)",
        "",
        f"Command: `{command}`",
        "",
        f"{machine(postgres)}; {measured_code()}; run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Each variant is the same small app (`tests/live_apps.py`) with a different session keeper,",
        "served on 127.0.0.1 by a real server: Starlette under uvicorn (1 worker, uvloop + httptools)",
        f"and Flask under gunicorn (1 gthread worker, `--threads {GUNICORN_THREADS}`). wrk",
        f"(`bench/wrk_session.lua`, `-t{args.wrk_threads} -c{CONNECTIONS}`) drives each for "
        f"{args.duration} s per run, {args.repeats} runs",
        "each, every (variant, scenario) in a shuffled order, all servers up at once. **The machine",
        f"has {os.cpu_count()} cores**, shared by the app server (one process: at most about one core for",
        "Python), wrk, and the store servers -- so absolute figures are this machine's; compare ratios.",
        "",
        "**req/s**, **p50**, **p99**: medians over the runs (latency as wrk measures it). **vs none**:",
        "req/s divided by that of the same stack without a session. **errors**: responses wrk counts",
        "as errors (status >= 400; these apps only ever send 503, the session store failing), summed",
        "over all runs. **app CPU** / **store CPU**: utime + stime of the app server's processes and of",
        "the store servers (Redis, PostgreSQL and its backends), per request, over all runs.",
        f"**Redis cmds** / **SQL stmts**: per request, from an untimed pass of {args.count} requests per",
        "scenario: Redis commands clients sent (MONITOR; commands inside a Lua script not counted),",
        "with all commands Redis ran (INFO commandstats, script commands included) in brackets;",
        "PostgreSQL top-level statements (pg_stat_statements; one autocommit transaction each).",
        "",
        "The stores are the bench's own: Redis 127.0.0.1 without persistence, a fresh PostgreSQL",
        "instance with `fsync=off` (neither pays for durability), SQLite in a temporary directory.",
        "wrk sends the cookies it is given, not the ones responses set, so the sessions are made",
        f"afresh (through the app) before a run once they are {FRESH_FOR} s old: as a browser's, which",
        "sends back what it was last given, they are always within their touch interval.",
        "",
    ]
    if args.quick:
        lines += ["**Quick run** (`--quick`): too short for the figures to mean anything.", ""]
    for stack, title in (("asgi", "ASGI: Starlette on uvicorn"), ("wsgi", "WSGI: Flask on gunicorn")):
        variants = [v for v in chosen if v.stack == stack]
        if not variants:
            continue
        base = next(v for v in variants if v.baseline)
        for scenario in SCENARIOS:
            lines += [
                f"## {title}, ({scenario}) {DESCRIPTIONS[scenario]}",
                "",
                "| variant | req/s | vs none | p50 ms | p99 ms | errors | app CPU µs/req "
                "| store CPU µs/req | Redis cmds/req | SQL stmts/req |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            base_rps = summary(cells[(base.key, scenario)])["rps"]
            for variant in variants:
                cell = cells[(variant.key, scenario)]
                s = summary(cell)
                errors = f"{s['errors']:.0f}"
                if s["socket_errors"] or s["timeouts"]:
                    errors += f" (+{s['socket_errors']:.0f} socket, {s['timeouts']:.0f} timeouts)"
                redis_text = commands_text(cell, "redis")
                if "redis" in cell.commands:
                    redis_text += f" ({commands_text(cell, 'redis_all')})"
                lines.append(
                    f"| {variant.name} | {s['rps']:.0f} | {s['rps'] / base_rps:.2f} | {s['p50']:.2f} "
                    f"| {s['p99']:.2f} | {errors} of {s['requests']:.0f} | {s['app_cpu']:.0f} "
                    f"| {s['store_cpu']:.0f} | {redis_text} | {commands_text(cell, 'sql')} |"
                )
            lines.append("")
    lines += targets(cells, chosen)
    found = notes(cells, chosen)
    lines += ["## Errors", ""] + (found or ["No variant answered any request with an error."]) + [""]
    return "\n".join(lines)


def targets(cells: dict[tuple[str, str], Cell], chosen: list[Variant]) -> list[str]:
    """The end-to-end targets of the "server-side stores under real load" issue, for this run."""
    keys = {v.key for v in chosen}

    def rps(key: str, scenario: str) -> float:
        return float(summary(cells[(key, scenario)])["rps"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = []
    for key, scenario, limit in (("asgi:sw-cookie", "a", 0.8), ("asgi:sw-sqlite", "a", 0.5)):
        if key in keys:
            ratio = rps(key, scenario) / rps("asgi:none", scenario)
            name = next(v.name for v in chosen if v.key == key)
            rows.append(
                f"| ({scenario}) {name} ≥ {limit}× no middleware | {ratio:.2f}× | {verdict(ratio >= limit)} |"
            )
    if {"asgi:sw-redis", "asgi:starsessions"} <= keys:
        for scenario in ("a", "b"):
            ratio = rps("asgi:sw-redis", scenario) / rps("asgi:starsessions", scenario)
            errors = summary(cells[("asgi:sw-redis", scenario)])["errors"]
            rows.append(
                f"| ({scenario}) sessionware RedisStore ≥ 2× starsessions RedisStore, no errors "
                f"| {ratio:.2f}×, {errors:.0f} errors | {verdict(ratio >= 2 and errors == 0)} |"
            )
    shared = [v for v in chosen if v.store is not None and (v.key, "e") in cells]
    failing = [v.name for v in shared if summary(cells[(v.key, "e")])["errors"]]
    rows.append(
        f"| (e) one session written by 16 connections: no errors, every store, ASGI and WSGI "
        f"| {len(shared) - len(failing)} of {len(shared)} without | {verdict(not failing)} |"
    )
    return ["## Targets", "", "| target | measured | verdict |", "|---|---:|---|", *rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (whole: wrk's unit)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per (variant, scenario)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of untimed load per cell first (0: none)"
    )
    parser.add_argument("--count", type=int, default=320, help="requests of the store-command pass")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--only", help="comma-separated variant keys (baselines always run)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 s, 1 repeat, no warm-up, 32 counted"
    )
    parser.add_argument("--write", metavar="PATH", help="also write the section into PATH")
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats, args.warmup, args.count = 1, 1, 0, 32
    if args.count % CONNECTIONS:
        parser.error(f"--count must be a multiple of {CONNECTIONS}")
    chosen = VARIANTS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {v.key for v in VARIANTS}
        if unknown:
            parser.error(f"unknown variants: {sorted(unknown)}")
        stacks = {key.split(":")[0] for key in wanted}
        chosen = [v for v in VARIANTS if v.key in wanted or (v.baseline and v.stack in stacks)]
    cells, postgres = run(args, chosen)
    command = ("python bench/bench_http.py " + " ".join(sys.argv[1:])).strip()
    text = report(cells, chosen, args, command, postgres)
    print(text)
    if args.write:
        write_section(args.write, "bench_http", text)
    if args.json:
        Path(args.json).write_text(
            json.dumps({f"{k} ({s})": vars(c) for (k, s), c in cells.items()}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
