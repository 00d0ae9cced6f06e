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

import pytest
from starlette.testclient import TestClient

from examples.demo.app import DEMO_PASSWORD, DEMO_USER, create_app, relative_time
from sessionware._devices import parse_device

ROOT = Path(__file__).resolve().parents[1]


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    assert match is not None, f"#{element_id} not on the page"
    return match.group(1)


def token_in(page: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


def log_in(client: TestClient, password: str = DEMO_PASSWORD, *, remember: bool = False) -> str:
    page = client.get("/").text
    fields = {"username": DEMO_USER, "password": password, "_csrf_token": token_in(page)}
    return client.post("/login", data={**fields, **({"remember": "on"} if remember else {})}).text


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
    assert text_of(page, "expires") in ("in 29 minutes", "in 30 minutes")
    assert text_of(page, "created") == "just now"
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
    phone = TestClient(app, headers={"user-agent": IPHONE_SAFARI})
    laptop = TestClient(app, headers={"user-agent": WINDOWS_EDGE})
    log_in(phone)
    log_in(laptop)
    page = laptop.get("/sessions").text
    assert page.count("class='session'") == 2
    assert f">{label(IPHONE_SAFARI)}</td>" in page
    assert f">{label(WINDOWS_EDGE)}</td>" in page
    assert IPHONE_SAFARI not in page.replace(f'title="{IPHONE_SAFARI}"', "")  # only as a tooltip
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
    lines = log.read_text().splitlines()
    assert not [line for line in lines if "warn" in line.lower() or "error" in line.lower()], lines


# -- `make demo` installs the demo's needs, not the dev toolchain -------------------------


def make_rule(target: str) -> tuple[list[str], list[str]]:
    """The prerequisites and recipe lines of a Makefile rule, with $(VAR)s expanded once."""
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) :?= (.*)$", makefile, re.MULTILINE))

    def expand(text: str) -> str:
        for _ in range(3):
            text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
        return text

    for match in re.finditer(r"^(\S+):(?!=)(.*)\n((?:\t.*\n?)*)", makefile, re.MULTILINE):
        if expand(match.group(1)) == target:
            recipe = [expand(line.strip()) for line in match.group(3).splitlines()]
            return expand(match.group(2)).split(), recipe
    raise AssertionError(f"no rule for {target} in the Makefile")


def test_make_demo_installs_only_the_demo_extra() -> None:
    prerequisites, _ = make_rule("demo")
    stamps = [name for name in prerequisites if ".installed" in name]
    assert stamps == [".venv/.installed-demo"], prerequisites
    _, recipe = make_rule(".venv/.installed-demo")
    installs = [line for line in recipe if "pip install" in line]
    assert installs == [".venv/bin/python -m pip install --quiet -e '.[demo]'"], recipe


def test_make_test_still_installs_the_dev_toolchain() -> None:
    prerequisites, _ = make_rule("test")
    assert ".venv/.installed-dev" in prerequisites
    _, recipe = make_rule(".venv/.installed-dev")
    assert any("pip install" in line and "dev" in line for line in recipe), recipe


DEMO_IMPORTS = """
import asyncio, importlib.abc, json, sys, tempfile
from pathlib import Path

allowed = set(json.loads(sys.argv[1]))
refused = set()


class OnlyTheDemoExtra(importlib.abc.MetaPathFinder):
    \"\"\"Acts as an environment with only sessionware[demo] installed: anything else is missing.\"\"\"

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or top in sys.stdlib_module_names or top in sys.modules:
            return None
        refused.add(top)
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, OnlyTheDemoExtra())

import uvicorn, uvicorn.main  # what `make demo` runs
from examples.demo.app import create_app

app = create_app(Path(tempfile.mkdtemp()))
sent = []

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    sent.append(message)

scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
asyncio.run(app(scope, receive, send))
assert sent[0]["status"] == 200, sent[0]
assert b'name="_csrf_token"' in sent[1]["body"]
print(json.dumps(sorted(refused)))
"""


def requirement_closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """``name`` and every distribution it needs, with ``extras``, in this environment."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        key = canonicalize_name(current)
        if key in found and not wanted:
            continue
        found.add(key)
        try:
            requires = distribution(current).requires or []
        except PackageNotFoundError:
            continue  # an optional dependency of a dependency, not installed: not imported either
        for line in requires:
            requirement = Requirement(line)
            markers = [{"extra": extra} for extra in (*wanted, "")]
            if requirement.marker is None or any(requirement.marker.evaluate(m) for m in markers):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def test_the_demo_runs_with_nothing_beyond_the_demo_extra() -> None:
    """The demo serves a page in an interpreter that can import only what ``pip install
    '.[demo]'`` brings (sessionware, its dependencies, Starlette, uvicorn and theirs)."""
    import json
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    closure = requirement_closure("sessionware", frozenset({"demo"}))
    assert {"starlette", "uvicorn", "cryptography"} <= closure
    assert not closure & {"pytest", "mypy", "ruff", "httpx", "flask", "redis", "psycopg"}
    importable = sorted(
        module
        for module, owners in packages_distributions().items()
        if any(canonicalize_name(owner) in closure for owner in owners)
    )
    run = subprocess.run(
        [sys.executable, "-c", DEMO_IMPORTS, json.dumps([*importable, "examples", "sessionware"])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # What it did without (optional imports of its dependencies, such as markupsafe) is printed.
    assert isinstance(json.loads(run.stdout.splitlines()[-1]), list)


# -- the sessions page: browsers, systems and times as people read them ------------------

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
WINDOWS_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
)


def label(user_agent: str) -> str:
    """The device label the library gives ``user_agent`` (ua-parser's if installed)."""
    device = parse_device(user_agent)
    assert device is not None
    return device.label


@pytest.mark.parametrize(
    ("offset", "said"),
    [
        (0, "just now"),
        (-59, "just now"),
        (-60, "1 minute ago"),
        (-5 * 60 - 30, "5 minutes ago"),
        (-3600, "1 hour ago"),
        (-3 * 3600, "3 hours ago"),
        (-2 * 86400, "2 days ago"),
        (30, "in less than a minute"),
        (29 * 60 + 59, "in 29 minutes"),
        (12 * 3600, "in 12 hours"),
    ],
)
def test_times_are_relative(offset: int, said: str) -> None:
    now = 1_700_000_000
    assert relative_time(now + offset, now) == said


def test_the_sessions_page_shows_how_long_ago_with_the_exact_time_as_a_tooltip(tmp_path: Path) -> None:
    from sessionware.testing import FakeClock

    clock = FakeClock(start=time.time())
    app = create_app(tmp_path, clock=clock)
    phone = TestClient(app, headers={"user-agent": IPHONE_SAFARI})
    log_in(phone)
    clock.advance(minutes=7)
    laptop = TestClient(app, headers={"user-agent": WINDOWS_EDGE})
    log_in(laptop)
    page = laptop.get("/sessions").text
    row = re.search(
        rf"<tr class='session'><td[^>]*>{re.escape(label(IPHONE_SAFARI))}</td>(.*?)</tr>", page, re.DOTALL
    )
    assert row is not None
    exact = r'<td title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">([^<]+)</td>'
    assert re.findall(exact, row.group(1)) == ["7 minutes ago", "7 minutes ago"]


def test_every_page_has_a_viewport_meta_tag(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    log_in(client)
    for path in ("/", "/sessions", "/reauth"):
        page = client.get(path).text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page, path
    refused = client.post("/counter")
    assert '<meta name="viewport"' in refused.text


def test_log_out_everywhere_else_keeps_this_browser(tmp_path: Path) -> None:
    app = create_app(tmp_path)
    laptop = TestClient(app, headers={"user-agent": WINDOWS_EDGE})
    others = [TestClient(app, headers={"user-agent": IPHONE_SAFARI}) for _ in range(2)]
    for client in (laptop, *others):
        log_in(client)
    page = laptop.get("/sessions").text
    assert 'id="revoke-others">Log out everywhere else</button>' in page
    page = post(laptop, "/sessions/revoke-others", page)
    assert text_of(page, "flash-info") == "Logged out 2 other session(s)."
    assert page.count("class='session'") == 1
    assert "this device" in page
    for other in others:
        assert "You are not logged in" in other.get("/").text


def test_the_sessions_page_is_a_device_list(tmp_path: Path) -> None:
    """Device, first and last seen, how, the network only (never the address), this device."""
    from sessionware.testing import FakeClock

    clock = FakeClock(start=time.time())
    app = create_app(tmp_path, clock=clock)
    phone = TestClient(app, headers={"user-agent": IPHONE_SAFARI}, client=("203.0.113.77", 50000))
    log_in(phone)
    clock.advance(minutes=20)
    post(phone, "/counter", phone.get("/").text)  # activity: last seen moves
    clock.advance(minutes=5)
    laptop = TestClient(app, headers={"user-agent": WINDOWS_EDGE}, client=("2001:db8:1234:5678::9", 50000))
    page = log_in(laptop)
    page = laptop.get("/sessions").text
    header = re.search(r"<table id=\"sessions\"><tr>(.*?)</tr>", page, re.DOTALL)
    assert header is not None
    assert re.findall(r"<th>([^<]*)</th>", header.group(1)) == [
        "Device",
        "First seen",
        "Last seen",
        "How",
        "Network",
        "",
    ]
    rows = re.findall(r"<tr class='session'>(.*?)</tr>", page, re.DOTALL)
    assert len(rows) == 2
    laptop_row, phone_row = rows  # most recently active first
    cells = [
        re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", phone_row, re.DOTALL)
    ]
    assert cells[:5] == [
        label(IPHONE_SAFARI),
        "25 minutes ago",
        "5 minutes ago",
        "password",
        "203.0.113.0/24",
    ]
    assert "Log out this device" in cells[5]
    assert "203.0.113.77" not in page
    cells = [
        re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", laptop_row, re.DOTALL)
    ]
    assert cells == [
        label(WINDOWS_EDGE),
        "just now",
        "just now",
        "password",
        "2001:db8:1234::/48",
        "this device",
    ]
    assert page.count("Log out this device") == 1  # not on this device's own row
    assert 'id="revoke-others">Log out everywhere else</button>' in page


def test_remember_me_logs_in_again_after_the_session_cookie_is_gone(tmp_path: Path) -> None:
    app = create_app(tmp_path)
    assert 'type="checkbox" name="remember"' in TestClient(app).get("/").text
    forgetful = TestClient(app, headers={"user-agent": IPHONE_SAFARI})
    log_in(forgetful)  # not ticked: no remember-me cookie
    assert set(forgetful.cookies.keys()) == {"session"}
    forgetful.cookies.delete("session")
    assert "You are not logged in" in forgetful.get("/").text

    client = TestClient(app, headers={"user-agent": WINDOWS_EDGE})
    page = log_in(client, remember=True)
    assert text_of(page, "user") == DEMO_USER
    assert "remembered" not in page  # logged in by password
    remembered = client.cookies["remember"]
    client.cookies.delete("session")  # the browser closed: its session cookie is gone
    page = client.get("/").text
    assert text_of(page, "user") == DEMO_USER
    assert "Logged in again by your remember-me cookie" in page
    assert client.cookies["remember"] != remembered  # rotated on use
    page = client.get("/sessions").text
    rows = re.findall(r"<tr class='session'>(.*?)</tr>", page, re.DOTALL)
    assert len(rows) == 3  # the two whose cookies are gone live on until they expire
    (mine,) = [row for row in rows if '<strong class="current">this device</strong>' in row]
    assert '<td class="how">remember me</td>' in mine
    assert sum('<td class="how">password</td>' in row for row in rows) == 2
    # Sudo mode still wants the password: a remember-me log-in is no fresh authentication.
    page = client.get("/sudo").text
    assert text_of(page, "flash-info") == "Please confirm your password to continue."
    assert text_of(post(client, "/reauth", page, password=DEMO_PASSWORD), "sudo") == "Sensitive settings"

    post(client, "/logout", client.get("/").text)  # logging out forgets the device
    client.cookies.delete("session")
    assert "You are not logged in" in client.get("/").text


# -- a refused form: a page for people, not a developer's checklist ---------------------


def test_a_refused_form_gets_a_friendly_page(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    page = log_in(client)
    reply = client.post("/counter", data={"_csrf_token": "forged"})
    assert reply.status_code == 403
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["cache-control"] == "no-store"
    assert "<h1>That form could not be accepted</h1>" in reply.text
    assert "Nothing was changed" in reply.text
    assert '<a href="/" id="back">' in reply.text
    assert text_of(reply.text, "csrf-reason") == "invalid token"
    assert "please make sure that" not in reply.text  # not the plain-text checklist for developers
    assert text_of(client.get("/").text, "counter") == "0"
    assert text_of(post(client, "/counter", page), "counter") == "1"


def test_a_cross_site_form_gets_the_friendly_page_with_its_reason(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path))
    page = client.get("/").text
    reply = client.post(
        "/login",
        data={"username": DEMO_USER, "password": DEMO_PASSWORD, "_csrf_token": token_in(page)},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert reply.status_code == 403
    assert "That form could not be accepted" in reply.text
    assert "cross-site" in text_of(reply.text, "csrf-reason")


def test_the_demo_uses_the_documented_csrf_error_hook(tmp_path: Path) -> None:
    """``error_app`` is CSRFMiddleware's documented option, and the demo's page goes through it."""
    import inspect

    from examples.demo import app as demo
    from sessionware import CSRFMiddleware

    assert "error_app" in inspect.signature(CSRFMiddleware).parameters
    assert "error_app:" in (CSRFMiddleware.__doc__ or "")
    csrf = [m for m in create_app(tmp_path).user_middleware if m.cls is CSRFMiddleware]  # type: ignore[comparison-overlap]
    assert len(csrf) == 1
    assert csrf[0].kwargs == {"error_app": demo.csrf_refused}
