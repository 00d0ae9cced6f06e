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


def token_in(page: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


def log_in(client: TestClient, password: str = DEMO_PASSWORD) -> str:
    page = client.get("/").text
    return client.post(
        "/login", data={"username": DEMO_USER, "password": password, "_csrf_token": token_in(page)}
    ).text


def post(client: TestClient, path: str, page: str, **fields: str) -> str:
    return client.post(path, data={"_csrf_token": token_in(page), **fields}).text


def test_log_in_bump_the_counter_see_the_session_and_log_out(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    assert "You are not logged in" in client.get("/").text

    refused = log_in(client, password="wrong")
    assert text_of(refused, "flash-error") == "Wrong user name or password."

    page = log_in(client)
    assert text_of(page, "flash-info") == f"Welcome, {DEMO_USER}."
    assert text_of(page, "user") == DEMO_USER
    assert text_of(page, "counter") == "0"
    assert "in 29 min" in text_of(page, "expires") or "in 30 min" in text_of(page, "expires")
    assert "flash-info" not in client.get("/").text  # shown once

    for expected in ("1", "2"):
        page = post(client, "/counter", page)
        assert text_of(page, "counter") == expected
    assert "&#34;counter&#34;: 2" in page or "&quot;counter&quot;: 2" in page

    page = post(client, "/logout", page)
    assert text_of(page, "flash-info") == "You are logged out."
    assert "You are not logged in" in page


def test_forms_without_the_csrf_token_are_refused(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    client.get("/")
    reply = client.post("/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
    assert reply.status_code == 403
    page = log_in(client)
    assert client.post("/counter").status_code == 403
    assert text_of(page, "counter") == "0"


def test_the_sessions_page_lists_browsers_and_logs_them_out(tmp_path: Path) -> None:
    app = create_app(tmp_path)
    phone = TestClient(app, headers={"user-agent": "Phone browser"})
    laptop = TestClient(app, headers={"user-agent": "Laptop browser"})
    log_in(phone)
    log_in(laptop)
    page = laptop.get("/sessions").text
    assert page.count("class='session'") == 2
    assert "Phone browser" in page
    handle = re.search(r'name="handle" value="([^"]+)"', page)
    assert handle is not None
    page = post(laptop, "/sessions/revoke", page, handle=handle.group(1))
    assert text_of(page, "flash-info") == "That session is logged out."
    assert page.count("class='session'") == 1
    assert "Log in first." in phone.get("/sessions").text  # the phone is logged out

    log_in(phone)
    page = post(laptop, "/sessions/revoke-others", laptop.get("/sessions").text)
    assert text_of(page, "flash-info") == "Logged out 1 other session(s)."
    assert "You are not logged in" in phone.get("/").text


def test_sudo_mode_asks_for_the_password_again_after_five_minutes(tmp_path: Path) -> None:
    from sessionware.testing import FakeClock

    clock = FakeClock(start=time.time())
    client = TestClient(create_app(tmp_path, clock=clock))
    log_in(client)
    assert text_of(client.get("/sudo").text, "sudo") == "Sensitive settings"
    clock.advance(400)
    page = client.get("/sudo").text
    assert text_of(page, "flash-info") == "Please confirm your password to continue."
    page = post(client, "/reauth", page, password="wrong")
    assert text_of(page, "flash-error") == "Wrong password."
    page = post(client, "/reauth", page, password=DEMO_PASSWORD)
    assert text_of(page, "sudo") == "Sensitive settings"


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
