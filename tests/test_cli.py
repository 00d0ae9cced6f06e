"""python -m sessionware: gen-secret, decode, purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sessionware import CookieStore, MemoryStore, SQLiteStore
from sessionware.errors import ConfigurationError
from sessionware.testing import FakeClock

from .conftest import SECRET, build_app, call


def run(
    *args: str, env_secret: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_BASE"}
    if env_secret is not None:
        env["SECRET_KEY_BASE"] = env_secret
    return subprocess.run(
        [sys.executable, "-m", "sessionware", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed; it exited with 2 and printed no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


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
    assert "invalid session cookie" in failed(result)


def test_purge_removes_expired_sqlite_sessions(tmp_path: Path) -> None:
    clock = FakeClock(start=1_000_000)  # long ago: everything it writes has expired by now
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    store.create("old", b"x", {}, 10, None)
    result = run("purge", "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 0, result.stderr
    assert "removed 1 expired session(s)" in result.stdout


def test_gen_secret_refuses_short_secrets() -> None:
    result = run("gen-secret", "--bytes", "16")
    assert "--bytes must be at least 32" in failed(result)


def test_migrate_prints_the_sql_it_runs() -> None:
    result = run("migrate", "--print-sql", "--table", "app_sessions")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE IF NOT EXISTS app_sessions" in result.stdout
    assert "app_sessions_user_key" in result.stdout
    assert "app_sessions_expires_at" in result.stdout


def test_migrate_creates_the_postgres_table(postgres_table: str) -> None:
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
    phone_handle = next(info["handle"] for info in sessions if info["user_agent"] == "Phone")
    table = run("sessions", "list", *options).stdout.splitlines()
    assert table[0].split("  ")[0] == "HANDLE"
    assert sorted(line.split()[0] for line in table[1:]) == sorted(info["handle"] for info in sessions)
    assert run("sessions", "revoke", *options, "--handle", phone_handle).returncode == 0
    assert call(app, "/whoami", cookie=phone).json()["user"] is None
    assert run("sessions", "revoke", *options, "--handle", phone_handle).returncode == 1
    assert run("sessions", "revoke", *options, "--all").stdout.strip() == "revoked 1 session(s)"
    assert json.loads(run("sessions", "list", *options, "--json").stdout) == []


def test_commands_that_need_the_secret_say_so() -> None:
    result = run("sessions", "list", "--store", "memory:", "--user", "alice")
    assert "SECRET_KEY_BASE" in failed(result)


def test_an_unknown_store_url_is_refused_with_the_known_ones() -> None:
    result = run("purge", "--store", "mongodb://localhost")
    assert "redis://" in failed(result)


# -- store URLs and what the reading commands may not create (issue 11, item 6) ------------


def test_sqlite_urls_follow_sqlalchemy_three_slashes_then_a_relative_or_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionware.stores import from_url

    monkeypatch.chdir(tmp_path)
    assert from_url("sqlite:///relative.db").path == "relative.db"
    assert from_url(f"sqlite:///{tmp_path}/absolute.db").path == f"{tmp_path}/absolute.db"  # four slashes
    for wrong in ("sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:x.db"):
        with pytest.raises(ConfigurationError, match=r"sqlite:///relative/path\.db or sqlite:////absolute"):
            from_url(wrong)


def test_migrate_creates_a_relative_sqlite_url_in_the_current_directory(tmp_path: Path) -> None:
    result = run("migrate", "--store", "sqlite:///sessions.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sessions.db").is_file()
    assert "table 'sessionware_sessions' is ready" in result.stdout
    purged = run("purge", "--store", "sqlite:///sessions.db", cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == "removed 0 expired session(s)\n"


def test_help_says_which_sqlite_url_is_relative_and_which_absolute() -> None:
    for command in (["--help"], ["purge", "--help"], ["sessions", "list", "--help"]):
        shown = " ".join(run(*command).stdout.split())
        assert "sqlite:///relative.db" in shown or "sqlite:///sessions.db" in shown, command
        assert "sqlite:////absolute" in shown or "sqlite:////var/lib" in shown, command
        assert "current directory" in shown, command


READING_COMMANDS = [
    ["purge"],
    ["sessions", "list", "--user", "alice", "--secret-key-base", SECRET],
    ["sessions", "revoke", "--user", "alice", "--all", "--secret-key-base", SECRET],
    ["decode", "i1.AAAA", "--secret-key-base", SECRET],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_reading_commands_never_create_a_missing_sqlite_file(command: list[str], tmp_path: Path) -> None:
    result = run(*command, "--store", "sqlite:///missing.db", cwd=tmp_path)
    line = failed(result)
    assert f"there is no database file {str(tmp_path / 'missing.db')!r}" in line
    assert "python -m sessionware migrate --store sqlite:///missing.db" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_reading_commands_never_create_a_missing_sqlite_table(command: list[str], tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "app.db") as connection:
        connection.execute("CREATE TABLE other (x)")
    result = run(*command, "--store", "sqlite:///app.db", "--table", "app_sessions", cwd=tmp_path)
    line = failed(result)
    assert "has no table 'app_sessions'" in line
    assert "python -m sessionware migrate --store sqlite:///app.db --table app_sessions" in line
    with sqlite3.connect(tmp_path / "app.db") as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["other"]


@pytest.mark.parametrize("command", READING_COMMANDS[:3], ids=lambda command: " ".join(command[:2]))
def test_reading_commands_refuse_a_missing_postgres_table_with_the_command_that_makes_it(
    command: list[str], postgres_table: str
) -> None:
    import psycopg

    from .servers import POSTGRES_DSN

    table = f"sessionware_missing_{os.getpid()}"
    result = run(*command, "--store", POSTGRES_DSN, "--table", table)
    line = failed(result)
    assert f"the table {table!r} does not exist" in line
    assert f"python -m sessionware migrate --store postgresql://... --table {table}" in line
    with psycopg.connect(POSTGRES_DSN) as connection:
        assert connection.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)


def test_decode_with_a_store_does_not_create_a_missing_postgres_table(postgres_table: str) -> None:
    from .servers import POSTGRES_DSN

    value = call(build_app(MemoryStore(), FakeClock()), "/login/alice").cookie().split("=", 1)[1]
    table = f"sessionware_missing_{os.getpid()}"
    result = run("decode", value, "--secret-key-base", SECRET, "--store", POSTGRES_DSN, "--table", table)
    assert f"the table {table!r} does not exist" in failed(result)


# -- sessions the given secret or cookie name cannot see (issue 11, item 7) ----------------


def _where(kind: str, store: Any, request: pytest.FixtureRequest) -> list[str]:
    from .servers import POSTGRES_DSN

    if kind == "sqlite":
        return ["--store", f"sqlite:///{store.path}"]
    if kind == "redis":
        return ["--store", request.getfixturevalue("redis_url"), "--prefix", store._keys.prefix]
    if kind == "redis-cluster":
        node = request.getfixturevalue("redis_cluster").url.split("://", 1)[1]
        return ["--store", f"redis+cluster://{node}", "--prefix", store._keys.prefix]
    return ["--store", POSTGRES_DSN, "--table", store.table]


@pytest.mark.parametrize("kind", ["sqlite", "redis", "redis-cluster", "postgres"])
def test_a_wrong_secret_or_cookie_name_is_not_answered_with_no_sessions(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from .conftest import OTHER_SECRET, make_server_store

    store = make_server_store(kind, request, tmp_path, FakeClock())
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "cli.db")  # on the wall clock, as the CLI's will be
    where = _where(kind, store, request)
    app = build_app(store, FakeClock(start=time.time()))
    call(app, "/auth/alice", headers=[("user-agent", "Phone")])
    call(app, "/auth/alice", headers=[("user-agent", "Laptop")])
    call(app, "/auth/bob")
    wrong = [*where, "--user", "alice", "--secret-key-base", OTHER_SECRET]
    line = failed(run("sessions", "list", *wrong))
    assert (
        "2 session(s) for user 'alice' could not be verified with this secret key base / cookie name" in line
    )
    listed = run("sessions", "list", *wrong, "--json")
    assert json.loads(listed.stdout) == []
    assert "could not be verified" in failed(listed)
    assert "could not be verified" in failed(run("sessions", "revoke", *wrong, "--all"))
    assert "could not be verified" in failed(run("sessions", "revoke", *wrong, "--handle", "0" * 32))
    # The cookie name the browser shows (with __Host-) is not the configured one: named in the hint.
    renamed = [*where, "--user", "alice", "--secret-key-base", SECRET, "--cookie-name", "__Host-session"]
    assert "they verify with --cookie-name session" in failed(run("sessions", "list", *renamed))
    # A user with no sessions at all is still "none", exit 0; the right secret sees both.
    nobody = run("sessions", "list", *where, "--user", "carol", "--secret-key-base", OTHER_SECRET)
    assert (nobody.returncode, nobody.stdout) == (0, "no live sessions for user 'carol'\n")
    right = run("sessions", "list", *where, "--user", "alice", "--secret-key-base", SECRET, "--json")
    assert right.returncode == 0, right.stderr
    assert len(json.loads(right.stdout)) == 2


def test_a_secret_left_out_of_a_rotation_is_reported_even_when_some_sessions_verify(tmp_path: Path) -> None:
    from .conftest import OLD_SECRET

    store = SQLiteStore(tmp_path / "cli.db")
    call(build_app(store, FakeClock(start=time.time()), secret=OLD_SECRET), "/auth/alice")
    call(build_app(store, FakeClock(start=time.time()), secret=[SECRET, OLD_SECRET]), "/auth/alice")
    where = ["--store", f"sqlite:///{store.path}", "--user", "alice"]
    partial = run("sessions", "revoke", *where, "--all", "--secret-key-base", SECRET)
    assert partial.stdout == "revoked 1 session(s)\n"
    assert "1 session(s) for user 'alice' could not be verified" in failed(partial)
    both = run(
        "sessions", "revoke", *where, "--all", "--secret-key-base", SECRET, "--secret-key-base", OLD_SECRET
    )
    assert (both.returncode, both.stdout, both.stderr) == (0, "revoked 1 session(s)\n", "")


# -- one line and exit 2 for every failure; plain-text help; decode (issue 11, item 9) ------


FAILURES = {
    "cluster URL, standalone Redis": ["purge", "--store", "redis+cluster://127.0.0.1:6379"],
    "cluster URL, standalone Redis (sessions)": [
        "sessions",
        "list",
        "--store",
        "redis+cluster://127.0.0.1:6379",
        "--user",
        "a",
        "--secret-key-base",
        SECRET,
    ],
    "unreachable Redis": ["purge", "--store", "redis://127.0.0.1:1/0"],
    "unreachable PostgreSQL": ["purge", "--store", "postgresql://postgres@127.0.0.1:1/test"],
    "missing PostgreSQL database": ["purge", "--store", "postgresql://postgres@127.0.0.1:5432/no_such_db"],
    "unknown scheme": ["purge", "--store", "mongodb://127.0.0.1"],
    "port out of range": ["purge", "--store", "redis://127.0.0.1:99999/0"],
    "short secret": ["decode", "e1.AAAA", "--secret-key-base", "short"],
    "garbage cookie": ["decode", "not-a-cookie", "--secret-key-base", SECRET],
    "unknown expiry": ["decode", "e1.AAAA", "--secret-key-base", SECRET, "--expiry", "aal9"],
}


@pytest.mark.parametrize("command", FAILURES.values(), ids=FAILURES.keys())
def test_every_failure_is_one_line_on_stderr_and_exit_status_2(command: list[str], redis_url: str) -> None:
    result = run(*command)
    if "--expiry" in command:  # argparse's own refusal: usage and the error, exit 2
        assert result.returncode == 2
        assert "invalid choice: 'aal9'" in result.stderr
        return
    line = failed(result)
    assert result.stdout == ""
    if "redis+cluster" in command[2] or "redis+cluster" in " ".join(command):
        assert "is not a Redis Cluster" in line
        assert "redis:// URL without cluster=True" in line


def test_failures_in_process_are_caught_too(capsys: pytest.CaptureFixture[str]) -> None:
    from sessionware._cli import main

    assert main(["purge", "--store", "redis://127.0.0.1:99999/0"]) == 2
    assert (
        capsys.readouterr().err
        == "error: the store URL 'redis://127.0.0.1:99999/0' is not valid: Port out of range 0-65535\n"
    )


def _all_help() -> dict[str, str]:
    """Every command's --help text, as argparse prints it."""
    import argparse

    from sessionware._cli import _parser

    shown: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        shown[name] = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}".strip())

    walk(_parser(), "")
    return shown


def test_help_is_plain_text_not_restructuredtext() -> None:
    shown = _all_help()
    assert {"", "decode", "migrate", "purge", "gen-secret", "sessions list", "sessions revoke"} <= set(shown)
    for name, text in shown.items():
        for markup in ("``", "`", ":class:", ":meth:", ":func:", ".. "):
            assert markup not in text, (name, markup)
    top = run("--help")
    assert top.returncode == 0
    assert top.stdout == shown[""].replace("usage: ", "usage: ", 1) or top.stdout.startswith("usage:")


def _cookie(store: Any, start: float, path: str = "/login/alice", **options: Any) -> str:
    reply = call(build_app(store, FakeClock(start=start), **options), path)
    return reply.cookie(options.get("cookie_name")).split("=", 1)[1]


ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_decode_shows_iso_dates_and_whether_the_session_is_still_valid() -> None:
    import re

    fresh = json.loads(run("decode", _cookie(CookieStore(), time.time()), "--secret-key-base", SECRET).stdout)
    for name in ("created_at", "last_active", "expires_at"):
        assert re.fullmatch(ISO, fresh[name]), (name, fresh[name])
    assert re.fullmatch(r"valid for (29m \d+s|30m 0s) \(expiry aal2\)", fresh["status"]), fresh["status"]
    old = run("decode", _cookie(CookieStore(), time.time() - 3 * 86400), "--secret-key-base", SECRET)
    assert old.returncode == 0, old.stderr
    assert re.fullmatch(r"expired 2d 2\dh ago \(expiry aal2\)", json.loads(old.stdout)["status"])
    week = run(
        "decode",
        _cookie(CookieStore(), time.time() - 3 * 86400),
        "--secret-key-base",
        SECRET,
        "--expiry",
        "aal1",
    )
    assert re.fullmatch(
        r"valid for 2[67]d \d+h \(expiry aal1\)",
        json.loads(week.stdout)["status"],
    )


def test_decode_takes_the_cookie_name_with_or_without_its_host_prefix() -> None:
    plain = _cookie(CookieStore(), time.time())  # configured "session"; https browsers show __Host-session
    shown = run("decode", plain, "--secret-key-base", SECRET, "--cookie-name", "__Host-session")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["cookie_name"] == "session"
    prefixed = _cookie(CookieStore(), time.time(), cookie_name="__Host-app")
    shown = run("decode", prefixed, "--secret-key-base", SECRET, "--cookie-name", "app")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["data"] == {"user": "alice"}
    assert "invalid session cookie" in failed(
        run("decode", plain, "--secret-key-base", SECRET, "--cookie-name", "other")
    )


def test_durations_show_the_largest_unit_and_the_next() -> None:
    from sessionware._cli_decode import duration

    assert [duration(n) for n in (0, 42, 250, 3600, 40_000, 27 * 86400, 2 * 86400 + 300)] == [
        "0s",
        "42s",
        "4m 10s",
        "1h 0m",
        "11h 6m",
        "27d 0h",
        "2d 0h",
    ]


def test_decode_with_a_store_shows_a_server_side_sessions_data(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    app = build_app(store, FakeClock(start=time.time()))
    cookie = call(app, "/login/alice").cookie()
    call(app, "/write/theme/dark", cookie=cookie)
    value = cookie.split("=", 1)[1]
    where = ["--store", f"sqlite:///{store.path}"]
    without = json.loads(run("decode", value, "--secret-key-base", SECRET).stdout)
    assert without["kind"] == "server-side id"
    assert "--store" in without["hint"]
    result = run("decode", value, "--secret-key-base", SECRET, *where)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["kind"] == "server-side id"
    assert shown["data"] == {"user": "alice", "theme": "dark"}
    assert shown["status"].startswith("valid for ")
    call(app, "/drop", cookie=cookie)
    gone = run("decode", value, "--secret-key-base", SECRET, *where)
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["status"].startswith("not in the store")


ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36"
)
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_sessions_list_prints_a_table_of_devices_with_relative_times(tmp_path: Path) -> None:
    from sessionware._devices import parse_device

    store = SQLiteStore(tmp_path / "cli.db")
    clock = FakeClock(start=time.time() - 25 * 60)
    app = build_app(store, clock, record_ip=True)
    phone = call(app, "/auth/alice", headers=[("user-agent", ANDROID_CHROME)]).cookie()
    clock.advance(minutes=20)
    assert call(app, "/whoami", cookie=phone).json()["user"] == "alice"  # activity: last seen moves
    clock.advance(minutes=5)
    call(app, "/auth/alice", headers=[("user-agent", WINDOWS_FIREFOX)])
    options = ["--store", f"sqlite:///{store.path}", "--user", "alice", "--secret-key-base", SECRET]

    result = run("sessions", "list", *options)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    columns = [column.strip() for column in header.split("  ") if column.strip()]
    assert columns == ["HANDLE", "DEVICE", "FIRST SEEN", "LAST SEEN", "HOW", "NETWORK", "DBSC"]
    starts = [header.index(column) for column in columns]
    cells = [[line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)] for line in lines]
    listed = json.loads(run("sessions", "list", *options, "--json").stdout)
    assert [cell[0] for cell in cells] == [info["handle"] for info in listed]  # most recent first
    laptop, android = (parse_device(agent) for agent in (WINDOWS_FIREFOX, ANDROID_CHROME))
    assert laptop is not None
    assert android is not None
    assert [cell[1:] for cell in cells] == [
        [laptop.label, "just now", "just now", "password", "127.0.0.0/24", "-"],
        [android.label, "25 minutes ago", "5 minutes ago", "password", "127.0.0.0/24", "-"],
    ]
    assert "Firefox 128 on Windows" in result.stdout
    assert ANDROID_CHROME not in result.stdout  # the raw string is for --json
    # --json keeps every field, the raw user agent and the device with its label.
    assert listed[1]["user_agent"] == ANDROID_CHROME
    assert listed[1]["device"]["label"] == android.label
    assert listed[1]["device"]["type"] == "mobile"
    assert listed[1]["last_seen"] == listed[1]["last_active"] > listed[1]["first_seen"]


@pytest.mark.parametrize(
    ("offset", "said"),
    [
        (0, "just now"),
        (-59, "just now"),
        (-60, "1 minute ago"),
        (-7200, "2 hours ago"),
        (-86400, "1 day ago"),
        (90, "in 1 minute"),
        (30, "in less than a minute"),
    ],
)
def test_the_cli_says_times_as_people_do(offset: int, said: str) -> None:
    from sessionware._cli import relative_time

    assert relative_time(1_700_000_000 + offset, 1_700_000_000) == said
