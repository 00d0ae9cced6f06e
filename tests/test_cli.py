"""python -m sessionware: gen-secret, decode, purge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sessionware import CookieStore, MemoryStore, SQLiteStore
from sessionware.testing import FakeClock

from .conftest import SECRET, build_app, call


def run(*args: str, env_secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if env_secret is not None:
        import os

        env = {**os.environ, "SECRET_KEY_BASE": env_secret}
    return subprocess.run(
        [sys.executable, "-m", "sessionware", *args], capture_output=True, text=True, env=env
    )


def test_decode_shows_a_cookie_stores_session() -> None:
    value = call(build_app(CookieStore(), FakeClock()), "/login/alice").cookie().split("=", 1)[1]
    result = run("decode", value, "--secret-key-base", SECRET)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["data"] == {"user": "alice"}
    assert shown["kind"] == "encrypted"
    assert shown["stale_key"] is False


def test_decode_reads_the_secret_from_the_environment_and_names_server_side_ids() -> None:
    value = call(build_app(MemoryStore(), FakeClock()), "/login/alice").cookie().split("=", 1)[1]
    result = run("decode", value, env_secret=SECRET)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "server-side id"


def test_decode_refuses_a_tampered_cookie_with_a_clear_error() -> None:
    value = call(build_app(CookieStore(), FakeClock()), "/login/alice").cookie().split("=", 1)[1]
    result = run("decode", value[:-4] + "AAAA", "--secret-key-base", SECRET)
    assert result.returncode == 1
    assert "invalid session cookie" in result.stderr


def test_purge_removes_expired_sqlite_sessions(tmp_path: Path) -> None:
    clock = FakeClock(start=1_000_000)  # long ago: everything it writes has expired by now
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    store.save("old", b"x", 10, None, None)
    result = run("purge", "--sqlite", str(tmp_path / "s.db"))
    assert result.returncode == 0, result.stderr
    assert "removed 1 expired session(s)" in result.stdout


def test_gen_secret_refuses_short_secrets() -> None:
    result = run("gen-secret", "--bytes", "16")
    assert result.returncode == 2
