"""The demo in a real browser: headless Chromium logs in, bumps the counter, has forged
forms refused, lists and logs out its sessions, logs out, and keeps the session cookie
with the attributes the middleware means it to have. With "remember me" it stays logged
in once its session cookie is gone; an old remember-me token replayed from another
browser profile revokes every session and token of the user.

The demo runs under uvicorn in a subprocess; a second tiny server on another port plays
the attacker's site. Debian's ``chromium`` and ``chromedriver`` are used as installed
(``apt-get install chromium chromium-driver``); nothing is downloaded. Without them the
test is skipped, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from examples.demo.app import DEMO_PASSWORD, DEMO_USER

from .test_demo import IPHONE_SAFARI, label

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SESSIONWARE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SESSIONWARE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
]
COOKIE = "session"  # the demo keeps SessionMiddleware's default cookie name
WAIT = 15  # seconds any one step may take before the test fails


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# -- the servers: the demo, and a page on another origin ---------------------------------


@contextlib.contextmanager
def serve_demo(directory: Path, *options: str, **env: str) -> Iterator[str]:
    """The demo under uvicorn on a free port of 127.0.0.1 (with uvicorn ``options``, and
    ``env`` added to the environment), its files and ``uvicorn.log`` in ``directory``; its URL."""
    environment = {
        **os.environ,
        "SESSIONWARE_DEMO_DIR": str(directory),
        "SECRET_KEY_BASE": secrets.token_urlsafe(64),
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "examples.demo.app:create_app"]
    log = directory / "uvicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", "0", *options],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while (started := re.search(r"running on (https?://127\.0\.0\.1:\d+)", log.read_text())) is None:
            assert server.poll() is None, f"uvicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"uvicorn did not start within 20 s:\n{log.read_text()}"
            time.sleep(0.05)
        yield started.group(1)
    finally:
        server.terminate()  # by PID
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo under uvicorn on a free port of 127.0.0.1, with its files in a temporary directory."""
    with serve_demo(tmp_path_factory.mktemp("demo")) as url:
        assert "sessionware demo" in httpx.get(url + "/", timeout=5).text
        yield url


class OtherSite:
    """A tiny web server on another port whose pages hold forms that post to the demo."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forge(self, path: str, action: str, fields: dict[str, str]) -> None:
        """Serve at ``path`` a page whose button posts ``fields`` to ``action``."""
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in fields.items()
        )
        self.pages[path] = (
            "<!doctype html><title>Free prizes</title>"
            f'<form method="post" action="{html.escape(action)}">{hidden}'
            '<button id="prize">Claim your prize</button></form>'
        ).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def other_site() -> Iterator[OtherSite]:
    site = OtherSite()
    try:
        yield site
    finally:
        site.close()


# -- the browser ---------------------------------------------------------------------


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """Headless Chromium driven by chromedriver, both as installed (never downloaded), with a
    profile of its own (no cookies shared with any other)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        reason = f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver)"
        if in_ci():
            pytest.fail(f"{reason}; in CI the browser test must run", pytrace=False)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager is never asked to download anything.
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chromium() as chrome:
        yield chrome


class Person:
    """Someone at the browser: opens pages, types, clicks and reads, waiting for each page."""

    def __init__(self, driver: WebDriver, url: str) -> None:
        self.driver = driver
        self.url = url
        self.wait = WebDriverWait(driver, WAIT)

    def open(self, address: str = "/") -> None:
        self.driver.get(address if "://" in address else self.url + address)

    def follow(self, by: str, value: str) -> None:
        """Click a button or link that leads to another page, and wait until that page has loaded."""
        # A mark on the old page's window: it is gone once another page has replaced it.
        # (Waiting for the old <html> to go stale can race chromedriver mid-navigation.)
        self.driver.execute_script("window.sessionwareTestOldPage = true")
        self.driver.find_element(by, value).click()
        WebDriverWait(self.driver, WAIT, ignored_exceptions=[WebDriverException]).until(
            lambda d: d.execute_script(
                "return !window.sessionwareTestOldPage && document.readyState === 'complete'"
            ),
            f"clicking {value!r} on {self.driver.current_url} led to no new page",
        )

    def submit(self, element_id: str) -> None:
        self.follow(By.ID, element_id)

    def text(self, element_id: str) -> str:
        located = expected_conditions.visibility_of_element_located((By.ID, element_id))
        return str(self.wait.until(located, f"#{element_id} not on {self.driver.current_url}").text)

    def has(self, element_id: str) -> bool:
        return bool(self.driver.find_elements(By.ID, element_id))

    def page_text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def cookies(self) -> list[dict[str, Any]]:
        """Every cookie as Chromium stored it (DevTools protocol), HttpOnly ones included."""
        cookies: list[dict[str, Any]] = self.driver.execute_cdp_cmd("Storage.getCookies", {})["cookies"]
        return cookies

    def session_cookie(self) -> dict[str, Any]:
        return self.cookie(COOKIE)

    def cookie(self, name: str) -> dict[str, Any]:
        found = [cookie for cookie in self.cookies() if cookie["name"] == name]
        assert len(found) == 1, f"expected one {name!r} cookie, the browser has {self.cookies()}"
        return found[0]

    def cookie_names(self) -> list[str]:
        return sorted(cookie["name"] for cookie in self.cookies())

    def forget_everything(self) -> None:
        """A fresh start: no cookies, so no session."""
        self.driver.execute_cdp_cmd("Storage.clearCookies", {})

    def log_in(self, password: str | None = None, *, remember: bool = False) -> None:
        """Log in as a person would: read the demo password off the page, type it, click."""
        self.open("/")
        shown = [code.text for code in self.driver.find_elements(By.CSS_SELECTOR, "p code")]
        assert shown == [DEMO_USER, DEMO_PASSWORD], f"the page should show the demo account, not {shown}"
        user, shown_password = shown
        assert self.driver.find_element(By.NAME, "username").get_attribute("value") == user
        typed = shown_password if password is None else password
        self.driver.find_element(By.NAME, "password").send_keys(typed)
        if remember:
            self.driver.find_element(By.ID, "remember").click()
        self.submit("login")

    def fresh_login(self) -> None:
        self.forget_everything()
        self.log_in()
        assert self.text("user") == DEMO_USER


@pytest.fixture
def person(driver: WebDriver, demo_url: str) -> Person:
    return Person(driver, demo_url)


def page_for_cookie(url: str, value: str, name: str = COOKIE) -> str:
    """The demo's home page as a client presenting cookie ``name`` (the session's) = ``value`` sees it."""
    return httpx.get(url + "/", headers={"cookie": f"{name}={value}"}, timeout=5).text


# -- the scenario, step by step --------------------------------------------------------


def test_logging_in_shows_a_flash_once_and_renews_the_session(person: Person) -> None:
    person.forget_everything()
    person.open("/")
    assert "You are not logged in" in person.page_text()
    person.log_in(password="not the password")
    assert person.text("flash-error") == "Wrong user name or password."
    assert not person.has("user")

    before = person.session_cookie()["value"]  # the form's CSRF secret already made a session
    person.log_in()
    assert person.text("flash-info") == f"Welcome, {DEMO_USER}."
    assert person.text("user") == DEMO_USER
    assert person.text("counter") == "0"
    after = person.session_cookie()["value"]
    assert after != before, "logging in must move to a new session ID"
    # Fixation defence: the ID the browser had before logging in is not logged in.
    assert "You are not logged in" in page_for_cookie(person.url, before)
    assert f'id="user">{DEMO_USER}<' in page_for_cookie(person.url, after)

    person.driver.refresh()
    assert person.text("user") == DEMO_USER
    assert not person.has("flash-info"), "a flash is shown once"


def test_the_counter_counts_and_survives_reloads(person: Person) -> None:
    person.fresh_login()
    cookie = person.session_cookie()["value"]
    for expected in ("1", "2", "3"):
        person.submit("bump")
        assert person.text("counter") == expected
    assert '"counter": 3' in person.text("session")
    person.driver.refresh()
    assert person.text("counter") == "3"
    person.open("/sessions")
    person.open("/")
    assert person.text("counter") == "3"
    assert person.session_cookie()["value"] == cookie, "ordinary writes keep the session ID"


def test_the_session_cookie_as_the_browser_stored_it(person: Person) -> None:
    person.fresh_login()
    cookie = person.session_cookie()
    assert cookie["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert cookie["path"] == "/"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # secure="auto" over plain http://127.0.0.1
    assert cookie["session"] is True  # no Max-Age/Expires: gone when the browser closes
    assert cookie["expires"] == -1
    assert len(person.cookies()) == 1, person.cookies()
    # HttpOnly: the page's scripts cannot read it.
    assert person.driver.execute_script("return document.cookie") == ""


def test_a_form_posted_without_its_csrf_token_is_refused(person: Person) -> None:
    person.fresh_login()
    person.submit("bump")
    assert person.text("counter") == "1"

    person.driver.execute_script(
        "document.getElementById('bump').form.querySelector('input[name=_csrf_token]').remove()"
    )
    person.submit("bump")
    assert "That form could not be accepted" in person.page_text()  # the demo's friendly page
    assert person.text("csrf-reason") == "missing token"

    person.open("/")
    person.driver.execute_script(
        "document.getElementById('bump').form.querySelector('input[name=_csrf_token]').value = 'forged'"
    )
    person.submit("bump")
    assert person.text("csrf-reason") == "invalid token"

    person.open("/")
    assert person.text("counter") == "1"
    assert person.text("user") == DEMO_USER


def test_forms_posted_from_other_sites_are_refused(person: Person, other_site: OtherSite) -> None:
    person.fresh_login()
    leaked = person.driver.execute_script(
        "return document.getElementById('bump').form.querySelector('input[name=_csrf_token]').value"
    )
    assert isinstance(leaked, str)
    assert leaked

    # Another site (localhost is not 127.0.0.1) with no token.
    other_site.forge("/prize", person.url + "/counter", {})
    person.open(f"http://localhost:{other_site.port}/prize")
    person.submit("prize")
    assert person.driver.current_url == person.url + "/counter"
    assert person.text("csrf-reason") == "cross-site request (Sec-Fetch-Site)"

    # Another port of the same host, even with a valid token that leaked.
    other_site.forge("/leaked", person.url + "/counter", {"_csrf_token": leaked})
    person.open(f"http://127.0.0.1:{other_site.port}/leaked")
    person.submit("prize")
    assert "request from another site of the same registrable domain" in person.page_text()

    person.open("/")
    assert person.text("counter") == "0", "no forged post got through"
    # The leaked token itself was valid: from the demo's own page it counts.
    person.driver.execute_script(
        "document.getElementById('bump').form.querySelector('input[name=_csrf_token]').value = arguments[0]",
        leaked,
    )
    person.submit("bump")
    assert person.text("counter") == "1"


def test_the_sessions_page_lists_this_browser_and_logs_out_another(person: Person) -> None:
    person.fresh_login()
    phone = httpx.Client(base_url=person.url, headers={"user-agent": IPHONE_SAFARI}, timeout=5)
    with phone:
        form = re.search(r'name="_csrf_token" value="([^"]+)"', phone.get("/").text)
        assert form is not None
        fields = {"username": DEMO_USER, "password": DEMO_PASSWORD, "_csrf_token": form.group(1)}
        assert f'id="user">{DEMO_USER}<' in phone.post("/login", data=fields, follow_redirects=True).text

        person.follow(By.LINK_TEXT, "Where I am logged in")
        assert person.driver.current_url == person.url + "/sessions"
        rows = person.driver.find_elements(By.CSS_SELECTOR, "#sessions tr.session")
        mine = [row for row in rows if row.find_elements(By.CSS_SELECTOR, "strong.current")]
        assert len(mine) == 1, [row.text for row in rows]
        user_agent = person.driver.execute_script("return navigator.userAgent")
        cell = mine[0].find_element(By.TAG_NAME, "td")
        # Headless Chromium, named from its user agent: "Chrome 156 on Linux" (or, with ua-parser's
        # rules, "HeadlessChrome 156 on Linux"), the raw string only as the tooltip.
        major = re.search(r"Chrome/(\d+)", user_agent)
        assert major is not None, user_agent
        assert cell.text == label(user_agent)
        assert re.fullmatch(rf"(Headless)?Chrome {major.group(1)} on Linux", cell.text), cell.text
        assert cell.get_attribute("title") == user_agent
        shown = [td.text for td in mine[0].find_elements(By.TAG_NAME, "td")]
        assert shown[1:] == ["just now", "just now", "password", "127.0.0.0/24", "this device"], shown

        phone_row = f"//table[@id='sessions']//tr[td[1]='{label(IPHONE_SAFARI)}']"
        button = person.driver.find_element(By.XPATH, phone_row + "//button")
        assert button.text == "Log out this device"
        person.submit(str(button.get_attribute("id")))
        assert person.text("flash-info") == "That session is logged out."
        assert not person.driver.find_elements(By.XPATH, phone_row)
        assert person.driver.find_elements(By.XPATH, "//tr[contains(., 'this device')]")
        assert "You are not logged in" in phone.get("/").text


def test_logging_out_shows_a_flash_ends_the_session_and_resets_the_counter(person: Person) -> None:
    person.fresh_login()
    person.submit("bump")
    assert person.text("counter") == "1"
    logged_in = person.session_cookie()["value"]
    assert f'id="user">{DEMO_USER}<' in page_for_cookie(person.url, logged_in)

    person.submit("logout")
    assert person.text("flash-info") == "You are logged out."
    assert "You are not logged in" in person.page_text()
    assert not person.has("counter")
    after = person.session_cookie()
    assert after["value"] != logged_in, "logging out must move to a new session ID"
    assert (after["httpOnly"], after["sameSite"], after["path"], after["session"]) == (True, "Lax", "/", True)
    # The logged-in ID is dead on the server, not just forgotten by the browser.
    assert "You are not logged in" in page_for_cookie(person.url, logged_in)

    person.log_in()
    assert person.text("counter") == "0"


# -- remember me: the session cookie goes, the user stays; a replayed old token ends it all -----

REMEMBER = "remember"  # the demo's RememberMe keeps its default cookie name
GRACE = 5  # RememberMe's default grace window (seconds) for a rotated token


def test_remember_me_outlives_the_session_cookie_and_a_replayed_old_token_revokes_everything(
    tmp_path: Path,
) -> None:
    with serve_demo(tmp_path) as url, chromium() as own_browser:
        me = Person(own_browser, url)
        me.open("/")
        me.log_in(remember=True)
        assert me.text("user") == DEMO_USER
        assert not me.has("remembered")  # logged in by password
        first = me.cookie(REMEMBER)
        assert (first["httpOnly"], first["sameSite"], first["path"], first["session"]) == (
            True,
            "Lax",
            "/",
            False,
        )
        assert first["expires"] > time.time() + 29 * 86400  # the demo remembers for 30 days
        first_session = me.session_cookie()
        assert first_session["session"] is True

        # The browser closes: the session cookie (no Max-Age) is gone, the remember-me cookie stays.
        me.driver.delete_cookie(COOKIE)
        assert me.cookie_names() == [REMEMBER]
        me.open("/")
        assert me.text("user") == DEMO_USER
        assert me.text("remembered").startswith("Logged in again by your remember-me cookie")
        assert me.session_cookie()["value"] != first_session["value"], "a fresh session, new ID"
        rotated = me.cookie(REMEMBER)["value"]
        assert rotated != first["value"], "the token is rotated on use"
        me.follow(By.LINK_TEXT, "Where I am logged in")
        (mine,) = [
            row
            for row in me.driver.find_elements(By.CSS_SELECTOR, "#sessions tr.session")
            if row.find_elements(By.CSS_SELECTOR, "strong.current")
        ]
        assert mine.find_element(By.CSS_SELECTOR, "td.how").text == "remember me"
        mine_now = me.session_cookie()["value"]

        # Another of the user's sessions, logged in by password elsewhere.
        with httpx.Client(base_url=url, headers={"user-agent": IPHONE_SAFARI}, timeout=5) as phone:
            form = re.search(r'name="_csrf_token" value="([^"]+)"', phone.get("/").text)
            assert form is not None
            fields = {"username": DEMO_USER, "password": DEMO_PASSWORD, "_csrf_token": form.group(1)}
            assert f'id="user">{DEMO_USER}<' in phone.post("/login", data=fields, follow_redirects=True).text

            time.sleep(GRACE + 1.5)  # past the grace window that tolerates racing parallel requests
            # A thief's browser (another profile) presents the old token, replaced since.
            with chromium() as thiefs_browser:
                thief = Person(thiefs_browser, url)
                thief.open("/")
                thiefs_browser.add_cookie(
                    {"name": REMEMBER, "value": first["value"], "path": "/", "httpOnly": True}
                )
                thief.open("/")
                assert "You are not logged in" in thief.page_text()
                assert not thief.has("user")
                assert REMEMBER not in thief.cookie_names(), "the replayed cookie is expired"

            # Every session and every remember-me token of the user is revoked, not just the thief's.
            assert "You are not logged in" in phone.get("/").text
            assert "You are not logged in" in page_for_cookie(url, mine_now)
            assert "You are not logged in" in page_for_cookie(url, rotated, name=REMEMBER)
        me.open("/")
        assert "You are not logged in" in me.page_text()
        assert not me.has("user")
        assert REMEMBER not in me.cookie_names()
