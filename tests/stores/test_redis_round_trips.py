"""What RedisStore sends: one command per operation, on both faces, read from MONITOR.

Each operation is counted on servers of the tests' own (a Redis, and the
3-master Cluster), after a warm-up: connections open, scripts loaded. MONITOR
shows what clients send (the source is their address) apart from what scripts
run inside Redis (the source is ``lua``).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from sessionware._contract import change
from sessionware.stores._redis_scripts import (
    CREATE_SCRIPT,
    DELETE_ALL_SCRIPT,
    DELETE_SCRIPT,
    LIST_SCRIPT,
    UPDATE_SCRIPT,
)
from sessionware.stores.redis import RedisStore

from ..conftest import unique_prefix
from ..servers import RedisCluster, RedisServer

_LINE = re.compile(r"^\+\S+ \[\d+ (\S+)\] (.*)$")
_ARGUMENT = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Command(NamedTuple):
    source: str  # "lua", or the client's address
    name: str
    arguments: list[str]


class Monitor:
    """The commands some Redis servers ran, op by op, from a MONITOR connection to each."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._feeds = [socket.create_connection(("127.0.0.1", port), timeout=5) for port in ports]
        self._pending = [b""] * len(ports)
        for feed in self._feeds:
            feed.sendall(b"MONITOR\r\n")
        self.since()

    def since(self) -> list[Command]:
        """What ran since the last call: every server runs a marker, then its feed is read up to it."""
        marker = secrets.token_hex(8)
        for port in self._ports:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                probe.sendall(f"ECHO {marker}\r\n".encode())
                probe.recv(64)
        seen: list[Command] = []
        for n, feed in enumerate(self._feeds):
            while True:
                line, complete, rest = self._pending[n].partition(b"\r\n")
                if not complete:
                    self._pending[n] += feed.recv(65536)
                    continue
                self._pending[n] = rest
                match = _LINE.match(line.decode("utf-8", "replace"))
                if match is None:
                    continue  # +OK
                name, *arguments = _ARGUMENT.findall(match.group(2))
                if arguments == [marker]:
                    break
                seen.append(Command(match.group(1), name.upper(), arguments))
        return seen

    def close(self) -> None:
        for feed in self._feeds:
            feed.close()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


class Target(NamedTuple):
    url: str
    cluster: bool
    ports: list[int]


@pytest.fixture(params=["redis", "redis-cluster"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("own_redis")
        return Target(server.url, False, [server.port])
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return Target(cluster.url, True, [node.port for node in cluster.nodes])


@pytest.fixture(params=["sync", "asyncio"])
def face(request: pytest.FixtureRequest, target: Target) -> Iterator[tuple[Any, Callable[[Any], Any]]]:
    """A face of a fresh store, and how to call it (on an event loop of its own for asyncio)."""
    store = RedisStore(target.url, cluster=target.cluster, prefix=unique_prefix())
    loop = asyncio.new_event_loop()

    def run(result: Any) -> Any:
        return loop.run_until_complete(result) if inspect.isawaitable(result) else result

    yield (store if request.param == "sync" else store.asyncio()), run
    loop.run_until_complete(loop.shutdown_asyncgens())  # closes this loop's client
    loop.close()
    store.close()


@pytest.fixture
def monitor(target: Target) -> Iterator[Monitor]:
    watching = Monitor(target.ports)
    yield watching
    watching.close()


def sent(commands: list[Command]) -> list[tuple[str, str]]:
    """The commands a client sent, with their first argument (the key, or the script's SHA1)."""
    return [(command.name, command.arguments[0]) for command in commands if command.source != "lua"]


def scripted(commands: list[Command]) -> list[str]:
    """The commands scripts ran inside Redis."""
    return [command.name for command in commands if command.source == "lua"]


def warm_up(store: Any, run: Callable[[Any], Any]) -> None:
    """Every operation once, in the group (the slot) the test uses: connections open, scripts loaded."""
    run(store.create("g/warm", b"h", {"a": "1"}, 60, "g/warm-user"))
    run(store.load("g/warm"))
    run(store.update("g/warm", change(b"h")))
    run(store.user_sessions("g/warm-user"))
    run(store.delete("g/warm"))
    run(store.delete_user_sessions("g/warm-user", None))


def test_every_operation_is_one_command(face: tuple[Any, Callable[[Any], Any]], monitor: Monitor) -> None:
    store, run = face
    warm_up(store, run)
    monitor.since()
    session = store._keys.session("g/k")[0]

    assert run(store.load("g/k")) is None
    assert sent(monitor.since()) == [("HGETALL", session)]

    run(store.create("g/k", b"h", {"a": "1"}, 60, None))
    commands = monitor.since()
    assert sent(commands) == [("EVALSHA", CREATE_SCRIPT.sha)]
    assert "TIME" not in scripted(commands)  # anonymous: no registry, no clock

    assert run(store.load("g/k")) == (b"h", {"a": "1"})
    assert sent(monitor.since()) == [("HGETALL", session)]

    assert run(store.update("g/k", change(b"h2", {"b": "2"}, ["a"]))) is True
    commands = monitor.since()
    assert sent(commands) == [("EVALSHA", UPDATE_SCRIPT.sha)]
    assert scripted(commands) == ["HMGET", "HSET", "HSET", "HDEL", "PEXPIRE"]

    assert run(store.update("g/k", change(b"h3", {"c": "3"}, user="g/alice"))) is True
    commands = monitor.since()
    assert sent(commands) == [("EVALSHA", UPDATE_SCRIPT.sha)]
    assert "TIME" in scripted(commands)  # filed in the registry, by the server's clock

    assert run(store.update("g/gone", change(b"h"))) is False
    assert sent(monitor.since()) == [("EVALSHA", UPDATE_SCRIPT.sha)]

    assert run(store.user_sessions("g/alice")) == [("g/k", b"h3")]
    assert sent(monitor.since()) == [("EVALSHA", LIST_SCRIPT.sha)]

    assert run(store.delete("g/k")) is True
    assert sent(monitor.since()) == [("EVALSHA", DELETE_SCRIPT.sha)]

    assert run(store.delete_user_sessions("g/alice", None)) == 0
    assert sent(monitor.since()) == [("EVALSHA", DELETE_ALL_SCRIPT.sha)]


def test_a_script_redis_no_longer_has_is_sent_whole_once(
    face: tuple[Any, Callable[[Any], Any]], monitor: Monitor, target: Target
) -> None:
    """After SCRIPT FLUSH (or a restart): EVALSHA, then EVAL on the same connection; then EVALSHA again."""
    store, run = face
    warm_up(store, run)
    run(store.create("g/k", b"h", {}, 60, None))
    for port in target.ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"SCRIPT FLUSH\r\n")
            assert conn.recv(64) == b"+OK\r\n"
    monitor.since()
    assert run(store.update("g/k", change(b"h2"))) is True
    commands = [command for command in monitor.since() if command.source != "lua"]
    assert [command.name for command in commands] == ["EVALSHA", "EVAL"]  # no reconnection in between
    assert commands[0].source == commands[1].source
    assert run(store.update("g/k", change(b"h3"))) is True
    assert sent(monitor.since()) == [("EVALSHA", UPDATE_SCRIPT.sha)]
