"""64 concurrent writes of one session, through real servers, against every shared store.

Each case starts a real server (``tests/live.py``) -- uvicorn with one or two
worker processes, or Flask on gunicorn's gthread workers -- on a store on a
real server: MemoryStore, SQLite (one file the workers share), Redis, the
3-master Redis Cluster of ``tests/servers.py``, PostgreSQL (a table of this
module's own). Then 64 requests carrying ONE session's cookie are sent at
once (every connection open before the first request is written). Each
handler loads the session, waits 0.3 s so that all of them hold the session
as it was before any wrote, then writes it. Every write must succeed (no 503
"the session store could not be reached") and the session must keep:

- one of the 64 values, when they all write the same key;
- all 64 keys (and the seeded one), when each writes a key of its own.

The servers count, per worker process, how many requests were inside that
wait at once; the tests check that the requests really overlapped (a few
connections arriving late are tolerated, a serialized run is not; see
:meth:`Case.overlap`).

A server that cannot be reached fails the test; it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import redis

from sessionware.stores.postgres import PostgresStore

from . import live, servers
from .conftest import SECRET

REQUESTS = 64
THREADS = 16  # gunicorn --threads


@dataclass(frozen=True)
class Case:
    server: str  # "uvicorn" or "gunicorn"
    workers: int
    store: str

    @property
    def label(self) -> str:
        if self.server == "uvicorn":
            where = "uvicorn" if self.workers == 1 else f"uvicorn-{self.workers}-workers"
        else:
            where = f"gunicorn-{self.workers}x{THREADS}"
        return f"{where}-{self.store}"

    def overlap(self, peaks: dict[str, int]) -> tuple[int, int, str]:
        """How much the requests overlapped, the least that proves they did, and what it counts.

        uvicorn holds every request it accepted in the handler's wait at once:
        across its workers, nearly all 64 must have been in flight together.
        A gunicorn worker holds at most ``THREADS``, and how the kernel spreads
        the connections over the workers varies: the busiest worker must have
        had nearly all its threads in flight together.
        """
        if self.server == "uvicorn":
            return sum(peaks.values()), REQUESTS * 3 // 4, "requests in flight at once over all workers"
        return (
            max(peaks.values(), default=0),
            THREADS * 3 // 4,
            "threads of the busiest worker in flight at once",
        )


CASES = [
    *(Case("uvicorn", 1, store) for store in ("memory", "sqlite", "redis", "redis-cluster", "postgres")),
    *(Case("uvicorn", 2, store) for store in ("sqlite", "redis", "redis-cluster", "postgres")),
    *(Case("gunicorn", 2, store) for store in ("sqlite", "redis", "postgres")),
    Case("gunicorn", 1, "memory"),  # a MemoryStore lives in one process
]


@dataclass
class Target:
    case: Case
    server: live.LiveServer


def _delete_keys(client: redis.Redis, prefix: str) -> None:
    for key in list(client.scan_iter(match=prefix + "*", count=1000)):
        client.delete(key)  # one at a time: a Cluster node refuses keys of several slots at once


@contextlib.contextmanager
def provisioned(store: str, request: pytest.FixtureRequest, tmp: str) -> Iterator[dict[str, str]]:
    """The environment of an app on ``store``, on a real server; cleaned up afterwards."""
    prefix = f"sw-load-{uuid.uuid4().hex[:12]}:"
    if store == "memory":
        yield {"SW_LIVE_STORE": "memory:"}
    elif store == "sqlite":
        yield {"SW_LIVE_STORE": f"sqlite:///{tmp}/sessions.db"}  # tmp is absolute: sqlite:////tmp/...
    elif store == "redis":
        url = request.getfixturevalue("redis_url")  # unreachable: a failure, never a skip
        try:
            yield {"SW_LIVE_STORE": url, "SW_LIVE_PREFIX": prefix}
        finally:
            client = redis.Redis.from_url(url)
            _delete_keys(client, prefix)
            client.close()
    elif store == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        try:
            yield {
                "SW_LIVE_STORE": f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}",
                "SW_LIVE_PREFIX": prefix,
            }
        finally:
            for node in cluster.nodes:
                client = redis.Redis(port=node.port)
                _delete_keys(client, prefix)
                client.close()
    elif store == "postgres":
        servers.check_postgres()
        table = f"sessionware_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        migrating = PostgresStore(servers.POSTGRES_DSN, table=table)
        migrating.migrate()
        migrating.close()
        try:
            yield {"SW_LIVE_STORE": servers.POSTGRES_DSN, "SW_LIVE_TABLE": table}
        finally:
            with psycopg.connect(servers.POSTGRES_DSN, autocommit=True) as connection:
                connection.execute(f"DROP TABLE IF EXISTS {table}")
    else:
        raise AssertionError(store)


@pytest.fixture(scope="module", params=CASES, ids=[case.label for case in CASES])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One server per case, shared by both scenarios; stopped (by PID) and its store cleaned after."""
    case: Case = request.param
    tmp = str(tmp_path_factory.mktemp(case.label))
    with provisioned(case.store, request, tmp) as env:
        env = {**env, "SW_LIVE_SESSION": "sessionware", "SW_LIVE_SECRET": SECRET}
        if case.server == "uvicorn":
            server = live.uvicorn(env, workers=case.workers)
        else:
            server = live.gunicorn(env, workers=case.workers, threads=THREADS)
        with server:
            server.start()
            yield Target(case, server)


@dataclass(repr=False)
class Outcome:
    """What 64 concurrent writes did: the replies, and the session afterwards."""

    target: Target
    written: dict[str, set[Any]]  # key -> the values requests wrote to it
    replies: list[live.Reply]
    session: dict[str, Any]
    statuses: Counter[int] = field(init=False)
    peaks: dict[str, int] = field(init=False)

    def __repr__(self) -> str:
        return f"Outcome({self.target.case.label}, statuses={dict(self.statuses)})"

    def __post_init__(self) -> None:
        self.statuses = Counter(reply.status for reply in self.replies)
        self.peaks = {}
        for reply in self.replies:
            worker, peak = reply.header("x-worker"), reply.header("x-in-flight-peak")
            if worker is not None and peak is not None:
                self.peaks[worker] = max(self.peaks.get(worker, 0), int(peak))

    @property
    def kept(self) -> list[str]:
        """The written keys whose value afterwards is one that was written."""
        return [key for key, values in self.written.items() if self.session.get(key) in values]

    @property
    def failed(self) -> list[live.Reply]:
        return [reply for reply in self.replies if not 200 <= reply.status < 300]

    def report(self, what: str) -> str:
        lines = [
            f"{self.target.case.label}: {what}",
            f"  statuses: {dict(sorted(self.statuses.items()))} (status 0: the exchange failed)",
            f"  in flight at once, per worker PID (from the 2xx replies): {self.peaks}",
            f"  session afterwards: {len(self.session)} keys; written keys kept: "
            f"{len(self.kept)}/{len(self.written)}; seeded key kept: {self.session.get('user') == 'alice'}",
        ]
        if self.failed:
            first = self.failed[0]
            lines.append(f"  first non-2xx reply: {first.status} {first.body[:300]!r}")
        return "\n".join(lines) + "\n" + self.target.server.stderr_tail()

    def assert_all_succeeded(self) -> None:
        failed = len(self.failed)
        assert failed == 0, self.report(f"{failed} of {REQUESTS} concurrent writes failed")

    def assert_overlapped(self) -> None:
        """The requests really were in the handler's wait together; with several workers, each took part."""
        case = self.target.case
        seen, least, what = case.overlap(self.peaks)
        assert seen >= least, self.report(f"only {seen} {what} (want at least {least})")
        assert len(self.peaks) == case.workers, self.report(
            f"{len(self.peaks)} of {case.workers} worker processes served the writes"
        )


def write_concurrently(target: Target, write: Callable[[int], tuple[str, Any]]) -> Outcome:
    """Seed one session, send REQUESTS writes of it at once (request i writes the
    ``(key, value)`` of ``write(i)``), then read the session back."""
    port = target.server.port
    seeded = live.get(port, "/seed")
    assert seeded.status == 200, f"seeding failed: {seeded.status} {seeded.body!r}\n" + (
        target.server.stderr_tail()
    )
    cookie = seeded.cookie()
    batch = uuid.uuid4().hex[:8]
    writes = [write(i) for i in range(REQUESTS)]
    written: dict[str, set[Any]] = {}
    for key, value in writes:
        written.setdefault(key, set()).add(value)
    paths = [f"/slow/{batch}/{key}/{value}" for key, value in writes]
    replies = asyncio.run(live.burst(port, paths, cookie))
    after = live.get(port, "/session", cookie)
    assert after.status == 200, f"reading the session back failed: {after.status} {after.body!r}"
    return Outcome(target, written, replies, after.json())


def write_on_every_worker(
    target: Target, write: Callable[[int], tuple[str, Any]], bursts: int = 6
) -> Outcome:
    """:func:`write_concurrently`, until a burst is served by every worker of the server.

    Connections that arrive together may all be accepted by one worker (the kernel
    wakes one of the processes waiting on the shared socket, and it accepts all that
    are pending), so one burst does not always prove that several processes shared the
    session. A burst served by fewer workers must still succeed whole; another is then
    sent, each on a fresh session, at most ``bursts`` in all.
    """
    for _ in range(bursts):
        outcome = write_concurrently(target, write)
        outcome.assert_all_succeeded()
        if len(outcome.peaks) == target.case.workers:
            break
    return outcome


def test_64_concurrent_writes_of_one_key_of_one_session_all_succeed_and_one_written_value_is_kept(
    target: Target,
) -> None:
    outcome = write_on_every_worker(target, lambda i: ("same", f"v{i}"))
    outcome.assert_all_succeeded()
    outcome.assert_overlapped()
    assert outcome.kept == ["same"], outcome.report(
        f"the key all requests wrote holds {outcome.session.get('same')!r}, none of the values written"
    )
    assert outcome.session.get("user") == "alice", outcome.report("the seeded key was lost")


def test_64_concurrent_writes_of_different_keys_of_one_session_all_succeed_and_every_key_is_kept(
    target: Target,
) -> None:
    outcome = write_on_every_worker(target, lambda i: (f"k{i}", i))
    outcome.assert_all_succeeded()
    outcome.assert_overlapped()
    assert len(outcome.kept) == REQUESTS, outcome.report(
        f"only {len(outcome.kept)}/{REQUESTS} keys were kept"
    )
    assert outcome.session.get("user") == "alice", outcome.report("the seeded key was lost")
