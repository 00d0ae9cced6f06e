"""examples/django_app, end to end: through Django's test client (CSRF checks on, as a
browser meets them), and started as a real server answering on its own port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import django_support
from .conftest import SECRET

django_support.setup()

from django.test import Client, override_settings  # noqa: E402 - after Django is configured

from sessionware import MemoryStore  # noqa: E402
from sessionware.testing import FakeClock  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def store(clock: FakeClock) -> Iterator[MemoryStore]:
    store = MemoryStore(clock=clock)
    with override_settings(SESSIONWARE={"store": store, "clock": clock, "record_ip": True}):
        yield store


class Browser:
    """Django's test client with CSRF enforced: every form carries its token, as a browser's does."""

    def __init__(self, agent: str = "TestBrowser/1") -> None:
        self.client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=agent)

    def get(self, path: str) -> str:
        response = self.client.get(path, follow=True)
        assert response.status_code == 200, response
        return response.content.decode()

    def post(self, path: str, fields: dict[str, str] | None = None, *, page: str = "/") -> str:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(page))
        assert token is not None
        response = self.client.post(
            path, {**(fields or {}), "csrfmiddlewaretoken": token.group(1)}, follow=True
        )
        assert response.status_code == 200, response
        return response.content.decode()

    def log_in(self, password: str = "wonderland") -> str:  # noqa: S107 - the example's user
        return self.post("/login", {"username": "alice", "password": password})

    def cookie(self) -> str | None:
        morsel = self.client.cookies.get("sessionid")
        return None if morsel is None or not morsel.value else morsel.value


def find(page: str, element: str) -> str | None:
    match = re.search(rf'id="{element}">([^<]*)<', page)
    return None if match is None else match.group(1)


def test_the_counter_lives_in_the_session() -> None:
    browser = Browser()
    assert find(browser.get("/"), "counter") == "0"
    browser.post("/counter")
    page = browser.post("/counter")
    assert find(page, "counter") == "2"


def test_a_post_without_the_csrf_token_is_refused() -> None:
    browser = Browser()
    browser.get("/")
    assert browser.client.post("/counter").status_code == 403


def test_log_in_renews_the_key_keeps_the_counter_and_shows_the_user() -> None:
    browser = Browser()
    browser.post("/counter")
    before = browser.cookie()
    page = browser.log_in()
    assert find(page, "user") == "alice"
    assert find(page, "flash") == "Welcome, alice."
    assert find(page, "counter") == "1"
    assert browser.cookie() not in (None, before)


def test_a_wrong_password_logs_nobody_in() -> None:
    page = Browser().log_in(password="guess")
    assert find(page, "user") is None
    assert find(page, "flash") == "Wrong user name or password."


def test_the_sessions_page_lists_each_device_and_ends_one(store: MemoryStore) -> None:
    laptop, phone = Browser("Laptop/1"), Browser("Phone/1")
    laptop.log_in()
    phone.log_in()
    page = laptop.get("/sessions")
    assert find(page, "count") == "2"
    assert "Laptop/1" in page
    assert "Phone/1" in page
    assert page.count("this device") == 1
    handle = re.search(r'data-handle="(\w+)"><td>Phone/1<', page)
    assert handle is not None
    page = laptop.post("/sessions/revoke", {"handle": handle.group(1)}, page="/sessions")
    assert find(page, "flash") == "Session ended."
    assert find(page, "count") == "1"
    assert find(phone.get("/"), "user") is None  # the phone is logged out
    assert find(laptop.get("/"), "user") == "alice"


def test_log_out_everywhere_else_keeps_this_device_under_a_new_key() -> None:
    browsers = [Browser(f"Device/{n}") for n in range(3)]
    for browser in browsers:
        browser.log_in()
    mine = browsers[0]
    before = mine.cookie()
    page = mine.post("/sessions/revoke-others", page="/sessions")
    assert find(page, "flash") == "Ended 2 other session(s)."
    assert find(page, "count") == "1"
    assert mine.cookie() not in (None, before)
    assert [find(other.get("/"), "user") for other in browsers[1:]] == [None, None]
    assert find(mine.get("/"), "user") == "alice"


def test_log_out_ends_the_session_for_every_copy_of_its_cookie() -> None:
    browser = Browser()
    browser.log_in()
    stolen = browser.cookie()
    assert stolen is not None
    browser.post("/logout")
    thief = Browser()
    thief.client.cookies["sessionid"] = stolen
    assert find(thief.get("/"), "user") is None


def test_the_sessions_page_needs_a_log_in() -> None:
    response = Browser().client.get("/sessions")
    assert response.status_code == 302


def test_the_example_starts_as_a_server_on_its_port(tmp_path: Path) -> None:
    """``python -m examples.django_app.app`` serves the page (on a free port here)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PORT": str(port),
        "SECRET_KEY_BASE": SECRET,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.django_app.app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    page = reply.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert find(page, "counter") == "0"
        assert 'action="/login"' in page
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    assert (tmp_path / "django-users.db").exists()
