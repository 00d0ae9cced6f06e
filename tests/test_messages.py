"""Every command, flag and extra that a message, a docstring or the docs name exists.

The messages are checked against the real command-line parser and against
``pyproject.toml``'s extras, so a hint such as ``migrate --postgres URL`` (there
is no ``--postgres``) or ``pip install 'sessionware[fastapi]'`` (there is no
such extra) fails here instead of in a newcomer's terminal.
"""

from __future__ import annotations

import argparse
import logging
import re
import sqlite3
import tomllib
from pathlib import Path

import pytest

from sessionware._cli import _parser
from sessionware._config import STORE_DOWN_TEXT
from sessionware.errors import MissingDependency
from sessionware.testing import FakeClock

from .conftest import build_app, call

ROOT = Path(__file__).resolve().parent.parent
COMMAND = re.compile(r"python -m sessionware((?: +(?!python\b)[^\s`'\"{}#;]+)*)")
EXTRA = re.compile(r"sessionware\[([^\]]*)\]")
#: ``MissingDependency("package", extra="name")``: its message says ``pip install 'sessionware[name]'``.
MISSING = re.compile(r"MissingDependency\(\s*\"[^\"]+\"\s*,\s*(?:extra\s*=\s*)?\"([^\"]+)\"")
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _sources() -> dict[str, str]:
    """The texts that name commands: the package's source, the README and the docs."""
    paths = [*sorted((ROOT / "src" / "sessionware").rglob("*.py")), ROOT / "README.md"]
    paths += sorted((ROOT / "docs").glob("*.md"))
    # A shell line continued with a backslash is one command.
    return {str(path.relative_to(ROOT)): path.read_text().replace("\\\n", " ") for path in paths}


def _commands() -> dict[str, tuple[set[str], dict[str, argparse.ArgumentParser]]]:
    """Each command path ("purge", "sessions list") -> (its flags, its subcommands)."""
    found: dict[str, tuple[set[str], dict[str, argparse.ArgumentParser]]] = {}

    def walk(parser: argparse.ArgumentParser, name: str, inherited: set[str]) -> None:
        flags = inherited | set(parser._option_string_actions)
        children: dict[str, argparse.ArgumentParser] = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                children = dict(action.choices)
        found[name] = (flags, children)
        for sub, child in children.items():
            walk(child, f"{name} {sub}".strip(), set())

    walk(_parser(), "", set())
    return found


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def command_problems(text: str) -> list[str]:
    """What is wrong with each ``python -m sessionware ...`` that ``text`` names."""
    commands = _commands()
    problems = []
    for match in COMMAND.finditer(text):
        words = [word.strip("[]()|,.:") for word in match.group(1).split()]
        path = ""
        flags_given = []
        for word in words:
            if not word:
                continue
            if word.startswith("-"):
                flags = FLAG.findall(word)
                if path == "" and set(flags) <= commands[""][0]:  # a global flag, before the command
                    continue
                flags_given += flags
                continue
            children = commands[path][1]
            if children and not flags_given:
                if word not in children:
                    problems.append(
                        f"{match.group(0)!r}: no command {word!r} (after {path or 'sessionware'!r})"
                    )
                    break
                path = f"{path} {word}".strip()
        else:
            known = commands[path][0] | commands[""][0]  # global flags go before the command
            problems += [
                f"{match.group(0)!r}: {path or 'sessionware'!r} has no flag {flag}"
                for flag in flags_given
                if flag not in known
            ]
    return problems


def extra_problems(text: str) -> list[str]:
    """What is wrong with each ``sessionware[...]`` extra that ``text`` names."""
    extras = _extras()
    problems = []
    for match in EXTRA.finditer(text):
        if "{" in match.group(1):  # errors.py's template: the extras it is given are checked below
            continue
        for extra in match.group(1).split(","):
            if extra.strip() not in extras:
                problems.append(f"{match.group(0)!r}: pyproject.toml has no extra {extra.strip()!r}")
    for match in MISSING.finditer(text):
        if match.group(1) not in extras:
            problems.append(f"{match.group(0)!r}: pyproject.toml has no extra {match.group(1)!r}")
    return problems


def test_the_checks_catch_the_hints_that_named_what_does_not_exist() -> None:
    """The check itself: it would have caught issue 11's bad hints, and passes good ones."""
    assert command_problems("create it with `python -m sessionware migrate --postgres URL`") == [
        "'python -m sessionware migrate --postgres URL': 'migrate' has no flag --postgres"
    ]
    assert command_problems("python -m sessionware migrte --store x") != []
    assert command_problems("python -m sessionware sessions lst --user 1") != []
    assert extra_problems("install it with: pip install 'sessionware[fastapi]'") != []
    assert extra_problems("pip install 'sessionware[litestar]'") != []
    assert extra_problems("pip install 'sessionware[flask,nope]'") != []
    assert extra_problems('raise MissingDependency("fastapi", extra="fastapi") from exc') != []
    assert extra_problems('raise MissingDependency("pynacl", "phoenix") from None') == []
    good = (
        "`python -m sessionware migrate --store postgresql://... --table t` or "
        "python -m sessionware sessions revoke --store redis://... --user 42 (--handle H | --all) and "
        "python -m sessionware -v purge --store sqlite:///sessions.db; pip install 'sessionware[flask,redis]'"
    )
    assert command_problems(good) == []
    assert extra_problems(good) == []
    # And it does look: the README and the docs name many commands and extras.
    texts = _sources().values()
    assert sum(len(COMMAND.findall(text)) for text in texts) >= 20
    assert sum(len(EXTRA.findall(text)) for text in texts) >= 5


@pytest.mark.parametrize("name", sorted(_sources()))
def test_every_command_flag_and_extra_named_in_the_source_and_docs_exists(name: str) -> None:
    text = _sources()[name]
    assert command_problems(text) + extra_problems(text) == []


def test_the_messages_made_at_run_time_name_real_commands_and_extras(tmp_path: Path) -> None:
    from sessionware import SQLiteStore
    from sessionware.stores import postgres

    texts = [
        postgres._missing_table("sessionware_sessions"),
        postgres._missing_table("app_sessions"),
        str(postgres._wrong_layout("app_sessions")),
        SQLiteStore(tmp_path / "s.db", table="app_sessions")._migrate_command(),
    ]
    for package, extra in [
        ("redis", "redis"),
        ("psycopg", "postgres"),
        ("flask", "flask"),
        ("pynacl", "phoenix"),
    ]:
        texts.append(str(MissingDependency(package, extra)))
    for text in texts:
        assert command_problems(text) + extra_problems(text) == [], text
    assert "--table app_sessions" in postgres._missing_table("app_sessions")
    assert "--table" not in postgres._missing_table("sessionware_sessions")
    # The frameworks an app brings itself are named as packages, not as extras of ours.
    assert str(MissingDependency("fastapi")).endswith("install it with: pip install fastapi")


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR)


def test_a_missing_postgres_table_answers_the_neutral_503_and_logs_the_command_that_makes_it(
    postgres_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionware.stores.postgres import PostgresStore

    from .servers import POSTGRES_DSN

    store = PostgresStore(POSTGRES_DSN, table="sessionware_never_migrated")
    try:
        app = build_app(store, FakeClock())
        with caplog.at_level(logging.ERROR, logger="sessionware"):
            reply = call(app, "/login/alice")
    finally:
        store.close()
    assert reply.status == 503
    assert reply.body.decode() == STORE_DOWN_TEXT
    logged = _logged(caplog)
    assert "the table 'sessionware_never_migrated' does not exist" in logged
    assert (
        "python -m sessionware migrate --store postgresql://... --table sessionware_never_migrated" in logged
    )
    assert "unreachable" not in logged
    assert command_problems(logged) == []


def test_a_sqlite_table_dropped_under_a_running_app_is_logged_with_the_fix_not_as_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionware import SQLiteStore

    store = SQLiteStore(tmp_path / "s.db")
    app = build_app(store, FakeClock())
    with sqlite3.connect(tmp_path / "s.db") as connection:
        connection.execute("DROP TABLE sessionware_sessions")
    with caplog.at_level(logging.ERROR, logger="sessionware"):
        reply = call(app, "/login/alice")
    assert reply.status == 503
    assert reply.body.decode() == STORE_DOWN_TEXT
    logged = _logged(caplog)
    assert "the table 'sessionware_sessions' does not exist" in logged
    assert f"python -m sessionware migrate --store sqlite:///{tmp_path / 's.db'}" in logged
    assert "unreachable" not in logged
    assert command_problems(logged) == []
