"""The benchmark still runs (a tiny smoke run; real figures come from `make bench`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_runs_and_reports_every_scenario_and_the_targets(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    others = "<!-- bench_stores:start -->\nstore figures\n<!-- bench_stores:end -->\n"
    out.write_text("<!-- bench_asgi:start -->\nold figures\n<!-- bench_asgi:end -->\n\n" + others)
    subprocess.run(
        [sys.executable, "bench/bench_asgi.py", "--rounds", "1", "--requests", "5", "--write", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert text.startswith("<!-- bench_asgi:start -->\n# Benchmarks\n")
    assert text.endswith("<!-- bench_asgi:end -->\n\n" + others)  # the other sections are kept
    assert "old figures" not in text
    for heading in ("## (a)", "## (b)", "## (c)", "## (d)", "## Targets", "## Store calls per request"):
        assert heading in text
    assert "starlette SessionMiddleware" in text
    assert "sessionware SQLiteStore" in text


def test_the_store_benchmark_runs_end_to_end(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "bench.md"
    out.write_text("# Benchmarks\n")
    small = ["--scale", "12000", "--rounds", "1", "--requests", "3"]
    subprocess.run(
        [sys.executable, "bench/bench_stores.py", *small, "--write", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    text = out.read_text()
    assert text.startswith("# Benchmarks\n")  # the section is added, the rest kept
    for heading in ("# Shared stores", "## (a)", "## Scale", "## Targets", "Flask-Session"):
        assert heading in text
    assert "12,000 sessions" in text


def test_the_wsgi_benchmark_runs_every_flask_variant_and_keeps_the_rest_of_the_file(
    tmp_path: Path, redis_url: str
) -> None:
    out = tmp_path / "bench.md"
    out.write_text(
        "# Benchmarks\n\nother sections\n\n"
        "<!-- bench_wsgi:start -->\nold figures\n<!-- bench_wsgi:end -->\n\ntail\n"
    )
    subprocess.run(
        [sys.executable, "bench/bench_wsgi.py", "--quick", "--redis-url", redis_url, "--write", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nother sections\n\n<!-- bench_wsgi:start -->\n# Flask (WSGI)")
    assert text.endswith("<!-- bench_wsgi:end -->\n\ntail\n")
    assert "old figures" not in text
    for heading in ("## (a)", "## (b)", "## (c)", "## (d)", "## Set-Cookie per request", "## Target"):
        assert heading in text
    for variant in (
        "bare Flask (no session)",
        "Flask SecureCookieSessionInterface",
        "sessionware CookieStore (encrypted)",
        "sessionware SQLiteStore",
        "sessionware RedisStore",
        "Flask-Session 0.8.0 RedisSessionInterface",
    ):
        assert f"| {variant} |" in text


def test_the_http_benchmark_runs_real_servers_under_wrk_and_writes_its_own_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    before = "# Benchmarks\n\n<!-- bench_asgi:start -->\nasgi figures\n<!-- bench_asgi:end -->\n\n"
    after = "\n\n<!-- bench_wsgi:start -->\nwsgi figures\n<!-- bench_wsgi:end -->\n"
    out.write_text(before + "<!-- bench_http:start -->\nold figures\n<!-- bench_http:end -->" + after)
    only = "asgi:sw-cookie,asgi:sw-redis,asgi:sw-postgres,wsgi:sw-sqlite"
    done = subprocess.run(
        [sys.executable, "bench/bench_http.py", "--quick", "--only", only, "--write", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    text = out.read_text()
    assert text.startswith(before + "<!-- bench_http:start -->\n# End to end over HTTP")
    assert text.endswith("<!-- bench_http:end -->" + after)  # the other sections are kept
    assert "old figures" not in text
    assert f"Command: `python bench/bench_http.py --quick --only {only} --write {out}`" in text
    for stack in ("ASGI: Starlette on uvicorn", "WSGI: Flask on gunicorn"):
        for scenario in ("(a)", "(b)", "(e)"):
            assert f"## {stack}, {scenario}" in text
    assert "\n## Errors\n" in text
    tables = text.split("\n## ")[1:7]
    for table in tables:
        rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
        assert rows, table
        for row in rows:
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            assert len(cells) == 10, row
            assert float(cells[1]) > 0, row  # req/s
            assert re.fullmatch(r"\d+( \(\+\d+ socket, \d+ timeouts\))? of [1-9]\d*", cells[5]), row
    asgi_read = tables[0]
    assert "| no middleware | " in asgi_read
    assert "| sessionware CookieStore (encrypted) | " in asgi_read
    redis_row = next(line for line in asgi_read.splitlines() if line.startswith("| sessionware RedisStore |"))
    assert re.search(r"\| \d+\.\d\d \(\d+\.\d\d\) \| - \|$", redis_row), redis_row  # Redis commands counted
    pg_row = next(line for line in asgi_read.splitlines() if line.startswith("| sessionware PostgresStore |"))
    assert re.search(r"\| - \| \d+\.\d\d \|$", pg_row), pg_row  # SQL statements counted
    assert "| bare Flask (no session) | " in tables[3]
    assert "| sessionware SQLiteStore | " in tables[3]


def test_the_django_benchmark_runs_every_engine_against_redis_and_writes_its_own_section(
    tmp_path: Path, redis_url: str
) -> None:
    out = tmp_path / "bench.md"
    out.write_text(
        "# Benchmarks\n\n<!-- bench_django:start -->\nold figures\n<!-- bench_django:end -->\n\ntail\n"
    )
    command = [sys.executable, "bench/bench_django.py", "--rounds", "1", "--requests", "5"]
    subprocess.run(
        [*command, "--redis-url", redis_url, "--write", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\n<!-- bench_django:start -->\n# Django (WSGI)")
    assert text.endswith("<!-- bench_django:end -->\n\ntail\n")
    assert "old figures" not in text
    for heading in ("## (a)", "## (b)", "## Targets"):
        assert heading in text
    for variant in (
        "bare Django (no session)",
        "Django cache backend (RedisCache)",
        "Django signed_cookies backend",
        "sessionware.django (RedisStore)",
    ):
        assert f"| {variant} |" in text
    # one HGETALL per read; a write adds one script (its commands counted as Redis ran them)
    assert re.search(r"\| sessionware\.django \(RedisStore\) \|[^\n]*\| 1\.00 \|\n", text)
