"""Django's own session tests, run against sessionware.django on SQLite, Redis and PostgreSQL.

scripts/upstream_django.sh downloads Django's source distribution and runs its
tests/sessions_tests -- the ``SessionTestsMixin`` contract every Django session
backend passes, and ``SessionMiddlewareTests`` -- with and without ``USE_TZ``,
with ``sessionware.django.SessionStore`` as the backend and ``SESSION_ENGINE``.
Every test must pass on every store, none skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import servers

ROOT = Path(__file__).resolve().parents[1]
STORES = ["sqlite", "redis", "postgres"]
#: SessionTestsMixin's 64 tests and SessionMiddlewareTests' 13, each with and without USE_TZ.
EXPECTED = 2 * (64 + 13)
Run = tuple[dict[str, str], str, int]


def _sections(output: str) -> dict[str, str]:
    parts = re.split(
        r"^== Django \S+ sessions_tests against sessionware\.django on (\w+)$", output, flags=re.M
    )
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def upstream_run() -> Run:
    servers.check_redis()
    servers.check_postgres()
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        [str(ROOT / "scripts" / "upstream_django.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return _sections(result.stdout), result.stdout + result.stderr, result.returncode


def test_the_script_runs_every_store_and_succeeds(upstream_run: Run) -> None:
    sections, output, returncode = upstream_run
    assert list(sections) == STORES, output
    assert returncode == 0, output


@pytest.mark.parametrize("store", STORES)
def test_djangos_own_session_tests_all_pass_on(store: str, upstream_run: Run) -> None:
    sections, output, _ = upstream_run
    section = sections.get(store, "")
    ran = re.search(r"^Ran (\d+) tests? in ", section, flags=re.M)
    assert ran is not None, output
    assert int(ran.group(1)) == EXPECTED, section
    assert re.search(r"^OK$", section, flags=re.M), section  # no failure, error or skip
    assert not re.search(r"\.\.\. (FAIL|ERROR|skipped)", section), section
    for name in (  # both halves ran, with and without time zones
        "SessionwareSessionTests",
        "SessionwareSessionWithTimeZoneTests",
        "SessionwareMiddlewareTests",
        "SessionwareMiddlewareWithTimeZoneTests",
    ):
        assert f"(sessionware_upstream.{name}.test_" in section, name
