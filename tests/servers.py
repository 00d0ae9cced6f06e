"""Real servers for the tests: the machine's Redis and PostgreSQL, and ones the tests run.

The shared servers (Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432,
database ``test``) must be up: ``make test`` starts them if they are installed
but stopped. A server that cannot be reached fails the test; it is never
skipped. Servers the tests start themselves -- a 3-master Redis Cluster and
the Redis / PostgreSQL instances that fault tests stop and kill -- listen on
other loopback ports and are stopped by PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REDIS_URL = os.environ.get("SESSIONWARE_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("SESSIONWARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class ServerMissing(AssertionError):
    """A server the tests need is not reachable: a failure, never a skip."""


def wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise ServerMissing(f"{what} did not come up within {timeout} s (last error: {last!r})")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 < 65536 and port_free(port + 10000):  # a cluster bus port too, if needed
            return port


def check_redis(url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServerMissing(
            f"Redis at {url} is not reachable ({exc}); start it with: redis-server --daemonize yes "
            '--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
        ) from exc
    finally:
        client.close()


def check_postgres(dsn: str = POSTGRES_DSN) -> None:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        raise ServerMissing(
            f"PostgreSQL at {dsn} is not reachable ({exc}); start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ) from exc


class RedisServer:
    """A redis-server of the tests' own, on its own port, stopped by PID."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix=f"sessionware-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            *self.extra,
        ]
        with (self.dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._ping(), f"redis-server on port {self.port}")
        return self

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three cluster-enabled masters on loopback ports, joined with redis-cli --cluster create."""

    def __init__(self) -> None:
        preferred = [7000, 7001, 7002]
        if all(port_free(p) and port_free(p + 10000) for p in preferred):
            ports = preferred
        else:
            ports = [free_port() for _ in range(3)]
        self.nodes = [
            RedisServer(
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "5000",
            )
            for port in ports
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        redis_cli = shutil.which("redis-cli") or "redis-cli"
        command = [redis_cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        wait_for(self._ok, "the Redis Cluster")
        return self

    def _ok(self) -> bool:
        import redis

        for node in self.nodes:
            client = redis.Redis(port=node.port, socket_timeout=1)
            try:
                if client.cluster("info")["cluster_state"] != "ok":
                    return False
            finally:
                client.close()
        return True

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class PostgresServer:
    """A PostgreSQL instance of the tests' own (initdb as the postgres user), stopped by PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = self._bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix=f"sessionware-pg-{self.port}-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root; setpriv execs (no fork), so PIDs stay ours
            self._as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _bin_dir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise ServerMissing("PostgreSQL's initdb is not installed (Debian package postgresql)")
        return found[-1].parent

    def init(self) -> PostgresServer:
        subprocess.run(
            [
                *self._as_postgres,
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self

    def start(self) -> PostgresServer:
        command = [
            *self._as_postgres,
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.dir}",
            "-c",
            "fsync=off",
        ]
        with (self.dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, f"PostgreSQL on port {self.port}", timeout=60)
        return self

    def _ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.dsn, connect_timeout=1):
            return True

    def pid(self) -> int:
        """The postmaster's PID (setpriv execs it, so it is the child's)."""
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid(), signal.SIGKILL)
            self.process.wait(10)
            # orphaned backends die when they notice the postmaster is gone
            time.sleep(0.2)

    def _tree(self) -> list[int]:
        """The postmaster's PID and those of all its descendants (backends, workers)."""
        found = [self.pid()]
        for pid in found:  # grows while it is walked: a breadth-first walk
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    found.extend(int(child) for child in (task / "children").read_text().split())
        return found

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster, then every backend: the server hangs, sockets stay open.

        Returns the PIDs stopped; :meth:`thaw` them with SIGCONT.
        """
        os.kill(self.pid(), signal.SIGSTOP)  # first, so that it forks no new backend
        stopped = self._tree()
        for pid in stopped[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return stopped

    def thaw(self, stopped: list[int]) -> None:
        for pid in reversed(stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stalled (every process SIGSTOPped) inside the block, resumed after."""
        stopped = self.freeze()
        try:
            yield
        finally:
            self.thaw(stopped)

    def restart(self) -> PostgresServer:
        """A fast shutdown, then the same data directory on the same port."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid(), signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running(server: RedisServer | RedisCluster | PostgresServer) -> Iterator[None]:
    try:
        yield
    finally:
        server.close()


class ReplyDroppingProxy:
    """A loopback TCP proxy in front of a real server that can lose one reply.

    :meth:`drop_reply_to` arms it: the next request containing ``marker`` is
    forwarded to the server (which executes it), but the reply never reaches
    the client -- the proxy closes that client connection instead, as a network
    failure right after the server acted would. Everything else passes through.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self.dropped = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_reply_to(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker
            self.dropped.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            swallow = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, swallow), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, swallow), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, swallow: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                with self._lock:
                    if self._marker is not None and self._marker in data:
                        self._marker = None
                        swallow.set()
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _replies(self, upstream: socket.socket, client: socket.socket, swallow: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if swallow.is_set():  # the server acted; the client never hears of it
                    client.shutdown(socket.SHUT_RDWR)
                    upstream.close()
                    self.dropped.set()
                    return
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
