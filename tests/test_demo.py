"""The demo app: what a person does with it, and that the README's command serves it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from starlette.testclient import TestClient

from examples.demo.app import DEMO_PASSWORD, DEMO_USER, create_app

ROOT = Path(__file__).resolve().parents[1]


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match is not None, f"#{element_id} not on the page"
    return match.group(1)


def test_log_in_bump_the_counter_see_the_session_and_log_out(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    page = client.get("/")
    assert "You are not logged in" in page.text
    assert "set-cookie" not in page.headers  # browsing anonymously stores nothing

    refused = client.post("/login", data={"username": DEMO_USER, "password": "wrong"})
    assert "Wrong user name or password" in refused.text

    page = client.post("/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
    assert text_of(page.text, "user") == DEMO_USER
    assert text_of(page.text, "counter") == "0"
    assert "in 29 min" in text_of(page.text, "expires") or "in 30 min" in text_of(page.text, "expires")

    for expected in ("1", "2"):
        page = client.post("/counter")
        assert text_of(page.text, "counter") == expected
    assert "&#34;counter&#34;: 2" in page.text or "&quot;counter&quot;: 2" in page.text

    page = client.post("/logout")
    assert "You are not logged in" in page.text
    assert (tmp_path / "sessions.db").exists()


def test_the_login_renews_the_session_id(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    client.post("/counter")  # anonymous: no session yet
    client.post("/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
    first = client.cookies["session"]
    client.post("/logout")
    client.post("/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
    assert client.cookies["session"] != first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_readme_demo_command_serves_the_demo(tmp_path: Path) -> None:
    makefile = (ROOT / "Makefile").read_text()
    command = re.search(r"^demo:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert command is not None
    args = command.group(1).replace("$(BIN)/python", sys.executable).split()
    port = free_port()
    args[args.index("--port") + 1] = str(port)
    env = {**os.environ, "SESSIONWARE_DEMO_DIR": str(tmp_path)}
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the demo did not start within 30 s"
                time.sleep(0.2)
        assert "sessionware demo" in body
    finally:
        server.terminate()
        server.wait(10)
