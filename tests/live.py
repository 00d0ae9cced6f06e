"""Real HTTP servers for the load tests and the end-to-end benchmark.

:func:`uvicorn` and :func:`gunicorn` start a server as a subprocess on a free
127.0.0.1 port, running an app factory from ``tests/live_apps.py`` configured
by the environment variables given (store URL, secret, Redis key prefix,
PostgreSQL table). The subprocess runs the very ``sessionware`` the calling
process imported: the directory it came from (``src/`` of this tree when run
with ``PYTHONPATH=src:.``) and the repository root come first on its
``PYTHONPATH``. ``start()`` returns once the
server answers ``GET /health`` (from every worker), ``stop()`` terminates it by
PID and kills it -- and any worker it left behind -- after a timeout. Its
stderr goes to a file, whose tail :meth:`LiveServer.stderr_tail` gives for
failure messages. Use it as a context manager so that it is always stopped.

:func:`burst` sends many requests really at once: every connection is open
before the first request is written, and all requests are written before any
response is read. :func:`get` sends one request. Both speak HTTP/1.1 on raw
sockets with ``Connection: close``: no cookie jar, exact headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sessionware

from .servers import ServerMissing, free_port

ROOT = Path(__file__).resolve().parents[1]
#: Where the calling process found sessionware: the servers import it from there too.
SESSIONWARE_HOME = Path(sessionware.__file__).resolve().parents[1]
ASGI_FACTORY = "tests.live_apps:asgi_app"
WSGI_FACTORY = "tests.live_apps:wsgi_app()"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

__all__ = ["LiveServer", "Reply", "burst", "cpu_seconds", "get", "gunicorn", "process_tree", "uvicorn"]


@dataclass
class Reply:
    """One HTTP response; ``status`` 0 means the exchange failed (``body`` says how)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key == name]
        return found[0] if found else None

    def cookie(self) -> str:
        """The ``name=value`` pair of the response's Set-Cookie, ready for a Cookie header."""
        header = self.header("set-cookie")
        assert header is not None, f"no Set-Cookie in the {self.status} response: {self.body[:200]!r}"
        return header.split(";", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body)


def _request(path: str, cookie: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: sessionware-live", "Connection: close"]
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def _parse(raw: bytes) -> Reply:
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        return Reply(0, body=b"incomplete response: " + raw[:200])
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip().lower(), value.strip()) for name, _, value in (x.partition(":") for x in lines)]
    reply = Reply(int(status_line.split()[1]), headers, body)
    if (reply.header("transfer-encoding") or "").lower() == "chunked":
        reply.body = _dechunk(body)
    return reply


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | Reply:
    try:
        return await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return Reply(0, body=f"connect failed: {exc!r}".encode())


async def _exchange(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | Reply, ready: asyncio.Event
) -> Reply:
    if isinstance(connection, Reply):
        return connection
    reader, writer = connection
    try:
        await ready.wait()  # the request was written with all the others
        return _parse(await reader.read())
    except OSError as exc:
        return Reply(0, body=f"exchange failed: {exc!r}".encode())
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def burst(port: int, paths: Sequence[str], cookie: str | None, timeout: float = 60) -> list[Reply]:
    """GET every path at once, each on its own connection, all carrying ``cookie``.

    All connections are opened first; then every request is written; only then
    are the responses read. Replies come back in the order of ``paths``.
    """
    async with asyncio.timeout(timeout):
        connections = await asyncio.gather(*(_connect(port) for _ in paths))
        ready = asyncio.Event()
        readers = [asyncio.ensure_future(_exchange(c, ready)) for c in connections]
        for connection, path in zip(connections, paths, strict=True):
            if not isinstance(connection, Reply):
                connection[1].write(_request(path, cookie))
        await asyncio.gather(
            *(c[1].drain() for c in connections if not isinstance(c, Reply)), return_exceptions=True
        )
        ready.set()
        return list(await asyncio.gather(*readers))


def get(port: int, path: str, cookie: str | None = None, timeout: float = 10) -> Reply:
    """One GET, blocking."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(_request(path, cookie))
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return _parse(b"".join(chunks))


# -- processes --------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return None if fields is None else fields[19]  # field 22: start time, in clock ticks after boot


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants (workers, their threads' children)."""
    found = [pid]
    for parent in found:  # grows while it is walked: breadth first
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return [p for p in found if _stat(p) is not None]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far (utime + stime)."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15
    return ticks / CLOCK_TICKS


class LiveServer:
    """One server subprocess: started on a free port, stopped by PID, stderr kept in a file."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str], port: int, workers: int):
        self.name = name
        self.command = list(command)
        self.port = port
        self.workers = workers
        path = os.pathsep.join([str(SESSIONWARE_HOME), str(ROOT), os.environ.get("PYTHONPATH", "")])
        self.env = {**os.environ, **env, "PYTHONPATH": path.rstrip(os.pathsep)}
        self.dir = Path(tempfile.mkdtemp(prefix="sessionware-live-"))
        self.stderr_path = self.dir / "stderr.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_pids: set[int] = set()
        self._started: dict[int, str] = {}  # pid -> start time: signal only processes we started

    def __repr__(self) -> str:
        return f"LiveServer({self.name!r}, port={self.port})"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 60) -> LiveServer:
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._remember_tree()
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until ``GET /health`` has been answered by every worker (each names its PID)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerMissing(
                    f"{self.name} exited with code {self.process.returncode} before answering:\n"
                    + self.stderr_tail()
                )
            try:
                replies = asyncio.run(burst(self.port, ["/health"] * (4 * self.workers), None, timeout=5))
            except (OSError, TimeoutError) as exc:
                last = repr(exc)
            else:
                for reply in replies:
                    if reply.status == 200 and reply.header("x-worker"):
                        self.worker_pids.add(int(reply.header("x-worker") or 0))
                    elif reply.status:  # the server is up, the app is broken: no point waiting
                        raise ServerMissing(
                            f"{self.name} answered GET /health with {reply.status} {reply.body[:200]!r}:\n"
                            + self.stderr_tail()
                        )
                    else:
                        last = reply.body[:200].decode(errors="replace")
                if len(self.worker_pids) >= self.workers:
                    return
            time.sleep(0.1)
        raise ServerMissing(
            f"{self.name} did not answer GET /health from {self.workers} worker(s) within {timeout} s "
            f"(workers seen: {sorted(self.worker_pids)}; last: {last}):\n" + self.stderr_tail()
        )

    def _remember_tree(self) -> None:
        assert self.process is not None
        for pid in process_tree(self.process.pid):
            started = _start_time(pid)
            if started is not None:
                self._started[pid] = started

    def pids(self) -> list[int]:
        """The server's process and its workers, now."""
        assert self.process is not None
        return process_tree(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def stderr_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr, runs of a repeated line shown once with their count."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return f"(no stderr of {self.name} captured)"
        runs: list[list[Any]] = []  # [line, times]
        for line in text.splitlines():
            if runs and runs[-1][0] == line:
                runs[-1][1] += 1
            else:
                runs.append([line, 1])
        tail = [line if times == 1 else f"{line}  [x{times}]" for line, times in runs[-lines:]]
        if not tail:
            return f"({self.name} wrote nothing to stderr)"
        return f"--- the end of {self.name}'s stderr ---\n" + "\n".join(tail)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; then SIGKILL any worker left behind."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._remember_tree()
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        for pid, started in self._started.items():
            if pid != self.process.pid and _start_time(pid) == started:  # still the process we started
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def uvicorn(env: Mapping[str, str], *, workers: int = 1, factory: str = ASGI_FACTORY) -> LiveServer:
    """uvicorn (uvloop + httptools) serving ``factory`` on a free port, with ``workers`` processes."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "5",
    ]
    return LiveServer(f"uvicorn --workers {workers}", command, env, port, workers)


def gunicorn(
    env: Mapping[str, str], *, workers: int = 2, threads: int = 16, app: str = WSGI_FACTORY
) -> LiveServer:
    """gunicorn serving ``app`` on a free port: ``workers`` gthread workers of ``threads`` threads."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        app,
    ]
    return LiveServer(f"gunicorn -w {workers} --threads {threads}", command, env, port, workers)
