"""python -m sessionware: gen-secret, decode, purge."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    store.create("old", b"x", {}, 10, None)
    result = run("purge", "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 0, result.stderr
    assert "removed 1 expired session(s)" in result.stdout


def test_gen_secret_refuses_short_secrets() -> None:
    result = run("gen-secret", "--bytes", "16")
    assert result.returncode == 2


def test_migrate_prints_the_sql_it_runs() -> None:
    result = run("migrate", "--print-sql", "--table", "app_sessions")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE IF NOT EXISTS app_sessions" in result.stdout
    assert "app_sessions_user_key" in result.stdout
    assert "app_sessions_expires_at" in result.stdout


def test_migrate_creates_the_postgres_table(postgres_table: str) -> None:
    import os

    import psycopg

    from .servers import POSTGRES_DSN

    table = f"sessionware_cli_{os.getpid()}"
    try:
        for _ in range(2):  # idempotent
            result = run("migrate", "--store", POSTGRES_DSN, "--table", table)
            assert result.returncode == 0, result.stderr
        with psycopg.connect(POSTGRES_DSN) as connection:
            found = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            assert found == (True,)
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_sessions_list_and_revoke_a_users_sessions_from_the_command_line(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from .conftest import make_server_store
    from .servers import POSTGRES_DSN

    store = make_server_store(kind, request, tmp_path, FakeClock())
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "cli.db")  # on the wall clock, as the CLI's will be
        where = ["--store", f"sqlite:///{store.path}"]
    elif kind == "redis":
        where = ["--store", request.getfixturevalue("redis_url"), "--prefix", store._keys.prefix]
    else:
        where = ["--store", POSTGRES_DSN, "--table", store.table]
    app = build_app(store, FakeClock(start=time.time()))
    phone = call(app, "/auth/alice", headers=[("user-agent", "Phone")]).cookie()
    call(app, "/auth/alice", headers=[("user-agent", "Laptop")])
    options = [*where, "--user", "alice", "--secret-key-base", SECRET]
    listed = run("sessions", "list", *options, "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    assert sorted(info["user_agent"] for info in sessions) == ["Laptop", "Phone"]
    assert (
        "alice" in run("sessions", "list", *options).stdout
        or "Phone" in run("sessions", "list", *options).stdout
    )
    phone_handle = next(info["handle"] for info in sessions if info["user_agent"] == "Phone")
    assert run("sessions", "revoke", *options, "--handle", phone_handle).returncode == 0
    assert call(app, "/whoami", cookie=phone).json()["user"] is None
    assert run("sessions", "revoke", *options, "--handle", phone_handle).returncode == 1
    assert run("sessions", "revoke", *options, "--all").stdout.strip() == "revoked 1 session(s)"
    assert json.loads(run("sessions", "list", *options, "--json").stdout) == []


def test_commands_that_need_the_secret_say_so() -> None:
    result = run("sessions", "list", "--store", "memory:", "--user", "alice")
    assert result.returncode == 1
    assert "SECRET_KEY_BASE" in result.stderr


def test_an_unknown_store_url_is_refused_with_the_known_ones() -> None:
    result = run("purge", "--store", "mongodb://localhost")
    assert result.returncode == 1
    assert "redis://" in result.stderr
