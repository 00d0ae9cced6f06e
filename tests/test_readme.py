"""Every ```python block in README.md and docs/*.md runs as written, and the ones that make an
app are driven through it (against the real Redis and PostgreSQL where a block needs them).

Each block runs in a fresh namespace, in a temporary working directory, with
``SECRET_KEY_BASE`` (and ``FLASK_SECRET_KEY``, ``SECRET_KEY``, ``REDIS_URL``,
``DATABASE_URL``) set. Names a block marks as "your code" (``authenticate``,
``check_password``, ``make_app``) are given by the block's exercise below, nothing else. A
block that is deliberately a fragment is marked with ``<!-- not-run: reason -->`` on the line
before it; there are none today, and the test keeps them few.
"""

from __future__ import annotations

import re
import secrets
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from . import servers

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^(?:<!-- not-run: (?P<reason>[^>]*?) -->\n)?```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL
)
MAX_NOT_RUN = 2


@dataclass(frozen=True)
class Block:
    path: str
    line: int
    code: str
    not_run: str | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def collect() -> list[Block]:
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            blocks.append(Block(document.relative_to(ROOT).as_posix(), line, match["code"], match["reason"]))
    return blocks


BLOCKS = collect()
SECRET = secrets.token_urlsafe(64)  # 64+ bytes: Phoenix's secret_key_base must be


@dataclass
class Exercise:
    """How to drive the blocks whose code contains ``marker``."""

    marker: str
    check: Callable[[dict[str, Any]], None]
    stubs: dict[str, Any] = field(default_factory=dict)


EXERCISES: list[Exercise] = []


Check = Callable[[dict[str, Any]], None]


def exercise(marker: str, **stubs: Any) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        EXERCISES.append(Exercise(marker, check, stubs))
        return check

    return register


def exercise_of(block: Block) -> Exercise | None:
    found = [candidate for candidate in EXERCISES if candidate.marker in block.code]
    assert len(found) <= 1, f"{block} matches several exercises: {[e.marker for e in found]}"
    return found[0] if found else None


@pytest.fixture
def schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, where a block's PostgresStore makes its table."""
    import psycopg

    servers.check_postgres()
    name = f"docs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(servers.POSTGRES_DSN, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(servers.POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY_BASE", SECRET)
    monkeypatch.setenv("FLASK_SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.chdir(tmp_path)  # SQLiteStore("sessions.db") and the like land here


def needs(block: Block) -> set[str]:
    return {name for name in ("REDIS_URL", "DATABASE_URL") if name in block.code}


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_the_block_runs(
    block: Block, environment: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if block.not_run is not None:
        pytest.skip(f"marked not-run: {block.not_run}")
    if "REDIS_URL" in needs(block):
        servers.check_redis()
        monkeypatch.setenv("REDIS_URL", servers.REDIS_URL)
    if "DATABASE_URL" in needs(block):
        schema = request.getfixturevalue("schema")
        monkeypatch.setenv("DATABASE_URL", f"{servers.POSTGRES_DSN}?options=-csearch_path%3D{schema}")
    found = exercise_of(block)
    namespace: dict[str, Any] = {"__name__": "docs_snippet", **(found.stubs if found else {})}
    exec(compile(block.code, str(block), "exec"), namespace)  # noqa: S102
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):  # a block that is a test runs as one
            value(**{p: TEST_FIXTURES[p]() for p in value.__code__.co_varnames[: value.__code__.co_argcount]})
    if found is not None:
        found.check(namespace)


def test_every_block_that_makes_an_app_is_driven() -> None:
    for block in BLOCKS:
        if re.search(r"^app = ", block.code, re.MULTILINE) and block.not_run is None:
            assert exercise_of(block) is not None, f"{block} makes an app: add an exercise for it"


def test_every_exercise_drives_a_block() -> None:
    for candidate in EXERCISES:
        assert any(candidate.marker in block.code for block in BLOCKS), f"no block has {candidate.marker!r}"


def test_blocks_marked_not_run_are_few_and_say_why() -> None:
    marked = [block for block in BLOCKS if block.not_run is not None]
    assert len(marked) <= MAX_NOT_RUN, [str(block) for block in marked]
    for block in marked:
        assert len(block.not_run or "") >= 10, f"{block}: say why it cannot run"


def test_every_document_with_python_is_covered() -> None:
    assert {block.path for block in BLOCKS} >= {
        "README.md",
        "docs/flask.md",
        "docs/migration.md",
        "docs/phoenix.md",
        "docs/stores.md",
        "docs/dbsc.md",
    }


# -- the install section ---------------------------------------------------------------


README = (ROOT / "README.md").read_text()
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_the_install_section_comes_before_the_first_snippet() -> None:
    install = README.index("## Install")
    assert install < README.index("```python")
    assert install < README.index("```sh")
    section = README[install : README.index("\n## ", install + 1)]
    assert "python3 -m venv .venv" in section
    assert "pip install sessionware " in section
    for extra in ("redis", "postgres", "flask", "phoenix"):
        assert f"pip install 'sessionware[{extra}]'" in section


def test_every_extra_the_docs_name_exists() -> None:
    named: set[str] = set()
    for document in [*DOCUMENTS, *sorted((ROOT / "examples").rglob("*.py"))]:
        for group in re.findall(r"(?:sessionware|\.)\[([a-z0-9_,-]+)\]", document.read_text()):
            named.update(group.split(","))
    assert named >= {"redis", "postgres", "flask", "phoenix", "demo"}
    assert named <= EXTRAS, f"extras named in the docs that pyproject.toml lacks: {sorted(named - EXTRAS)}"


def test_the_quick_start_is_two_commands() -> None:
    start = README.index("## Quick start")
    block = re.search(r"```sh\n(.*?)```", README[start:], re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


# -- the exercises ----------------------------------------------------------------------


def session_cookie(reply: Any, name: str = "session") -> str:
    header = reply.headers.get("set-cookie", "")
    assert header.startswith(f"{name}="), header
    return str(header)


def starlette_app(namespace: dict[str, Any], routes: list[Route], **options: Any) -> Any:
    from starlette.applications import Starlette

    from sessionware import MemoryStore, SessionMiddleware

    app = Starlette(routes=routes)
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=MemoryStore(), **options)
    return app


@exercise("session.log_in(42)")
def starlette_log_in(namespace: dict[str, Any]) -> None:
    client = TestClient(namespace["app"])
    assert client.get("/me").json() == {"user_id": None}
    session_cookie(client.post("/login"))
    assert client.get("/me").json() == {"user_id": 42}
    copy = client.cookies["session"]
    client.post("/logout")
    assert client.get("/me").json() == {"user_id": None}
    stolen = TestClient(namespace["app"], cookies={"session": copy})
    assert stolen.get("/me").json() == {"user_id": None}
    assert Path("sessions.db").exists()


@exercise("from sessionware.fastapi import SessionDep")
def fastapi_cart(namespace: dict[str, Any]) -> None:
    client = TestClient(namespace["app"])
    reply = client.post("/cart/apple")
    assert reply.json() == ["apple"]
    session_cookie(reply)
    assert client.post("/cart/pear").json() == ["apple", "pear"]


async def authenticate(request: Request) -> Any:
    return SimpleNamespace(id=42)


@exercise("async def password_changed(request)", authenticate=authenticate)
def user_sessions_listing(namespace: dict[str, Any]) -> None:
    async def login(request: Request) -> Response:
        await namespace["login"](request)
        return PlainTextResponse("ok")

    async def listing(request: Request) -> Response:
        return JSONResponse(await namespace["my_sessions"](request))

    async def revoke(request: Request) -> Response:
        await namespace["revoke"](request)
        return PlainTextResponse("ok")

    async def changed(request: Request) -> Response:
        await namespace["password_changed"](request)
        return PlainTextResponse("ok")

    app = starlette_app(
        namespace,
        [
            Route("/login", login, methods=["POST"]),
            Route("/sessions", listing),
            Route("/revoke/{handle}", revoke, methods=["POST"]),
            Route("/password", changed, methods=["POST"]),
        ],
    )
    laptop, phone = (
        TestClient(app, headers={"user-agent": "laptop"}),
        TestClient(app, headers={"user-agent": "phone"}),
    )
    laptop.post("/login")
    phone.post("/login")
    rows = laptop.get("/sessions").json()
    assert sorted((agent, current) for _, agent, _, current in rows) == [("laptop", True), ("phone", False)]
    other = next(handle for handle, _, _, current in rows if not current)
    laptop.post(f"/revoke/{other}")
    assert [agent for _, agent, _, _ in laptop.get("/sessions").json()] == ["laptop"]
    phone.post("/login")
    laptop.post("/password")
    assert [agent for _, agent, _, _ in laptop.get("/sessions").json()] == ["laptop"]


async def check_password(request: Request) -> bool:
    return True


@exercise("get_session(request).reauthenticated()", check_password=check_password)
def sudo_mode(namespace: dict[str, Any]) -> None:
    from sessionware import get_session
    from sessionware.testing import FakeClock

    async def login(request: Request) -> Response:
        get_session(request).log_in(42)
        return PlainTextResponse("ok")

    async def change_email(request: Request) -> Response:
        await namespace["change_email"](request)
        return PlainTextResponse("changed")

    async def confirm(request: Request) -> Response:
        await namespace["confirm_password"](request)
        return PlainTextResponse("confirmed")

    clock = FakeClock()
    routes = [
        Route("/login", login, methods=["POST"]),
        Route("/email", change_email, methods=["POST"]),
        Route("/confirm", confirm, methods=["POST"]),
    ]
    client = TestClient(starlette_app(namespace, routes, clock=clock))
    client.post("/login")
    assert client.post("/email").text == "changed"
    clock.advance(minutes=11)
    refused = client.post("/email")
    assert refused.status_code == 401
    assert "re-authentication required" in refused.text
    client.post("/confirm")
    assert client.post("/email").text == "changed"


@exercise('CookieStore(revocation=SQLiteStore("revocations.db"))')
def revocation_store(namespace: dict[str, Any]) -> None:
    from sessionware import CookieStore

    assert isinstance(namespace["store"], CookieStore)


@exercise("dbsc=DBSC(bound_cookie_lifetime=600)")
def dbsc_app(namespace: dict[str, Any]) -> None:
    from sessionware.testing import DBSCBrowser

    client = TestClient(namespace["app"], base_url="https://testserver")
    browser = DBSCBrowser(client)
    assert browser.register(client.post("/login")).status_code == 200
    assert client.get("/me").text == "alice (device-bound: True)"
    assert browser.refresh().status_code == 200
    plain = TestClient(namespace["app"])  # plain http: never offered, works as without DBSC
    assert "secure-session-registration" not in plain.post("/login").headers
    assert plain.get("/me").text == "alice (device-bound: False)"


@exercise('templates.env.globals["csrf_input"] = csrf_input')
def starlette_csrf(namespace: dict[str, Any]) -> None:
    app, templates = namespace["app"], namespace["templates"]

    async def form(request: Request) -> Response:
        page = templates.env.from_string("<form>{{ csrf_input(request) }}</form>").render(request=request)
        return PlainTextResponse(page)

    async def submit(request: Request) -> Response:
        return PlainTextResponse("accepted")

    app.router.routes.extend([Route("/form", form), Route("/submit", submit, methods=["POST"])])
    client = TestClient(app)
    page = client.get("/form")
    session_cookie(page)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    assert client.post("/submit", data={"_csrf_token": "forged"}).status_code == 403
    assert client.post("/submit", data={"_csrf_token": token.group(1)}).text == "accepted"


@exercise('put_flash(request, "info", "Saved.")')
def flash_messages(namespace: dict[str, Any]) -> None:
    app = starlette_app(
        namespace, [Route("/", namespace["home"]), Route("/save", namespace["save"], methods=["POST"])]
    )
    client = TestClient(app)
    assert client.post("/save").text == "<p class=info>Saved.</p>"  # followed the redirect
    assert client.get("/").text == ""  # shown once


@exercise("class TestMyStore(RegistryContract)")
def store_contract(namespace: dict[str, Any]) -> None:
    from sessionware.testing import RegistryContract

    assert issubclass(namespace["TestMyStore"], RegistryContract)


def flask_authenticate(form: Any) -> Any:
    return SimpleNamespace(id=42)


@exercise('flash("Welcome back!")', authenticate=flask_authenticate)
def flask_readme(namespace: dict[str, Any]) -> None:
    client = namespace["app"].test_client()
    assert client.get("/").json == {"user": None, "cart": []}
    reply = client.post("/login")
    assert reply.status_code == 302
    session_cookie(reply)
    assert client.get("/").json == {"user": 42, "cart": []}


@exercise('PhoenixCookieStore(\n        signing_salt="pUb5igN8"')
@exercise('store=PhoenixCookieStore(signing_salt="pUb5igN8", encryption_salt="hHb1Xz2q")')
def phoenix_app(namespace: dict[str, Any]) -> None:
    from sessionware.phoenix import decode_cookie

    async def put(request: Request) -> Response:
        request.session["user_id"] = 7
        return PlainTextResponse("ok")

    app = namespace["app"]
    app.router.routes.append(Route("/put", put, methods=["POST"]))
    header = session_cookie(TestClient(app).post("/put"), "_my_app_key")
    value = header.split(";")[0].partition("=")[2]
    assert value.startswith("XCP.")
    decoded = decode_cookie(
        value, secret_key_base=SECRET, signing_salt="pUb5igN8", encryption_salt="hHb1Xz2q"
    )
    assert decoded is not None
    assert decoded["user_id"] == 7


@exercise('request.session["role"] = Atom("admin")')
def phoenix_atoms(namespace: dict[str, Any]) -> None:
    from starlette.applications import Starlette

    from sessionware import SessionMiddleware
    from sessionware.phoenix import Atom, PhoenixCookieStore, decode_cookie

    async def promote(request: Request) -> Response:
        await namespace["promote"](request)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/promote", promote, methods=["POST"])])
    store = PhoenixCookieStore(signing_salt="pUb5igN8")
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, cookie_name="_my_app_key", store=store)
    header = session_cookie(TestClient(app).post("/promote"), "_my_app_key")
    decoded = decode_cookie(
        header.split(";")[0].partition("=")[2], secret_key_base=SECRET, signing_salt="pUb5igN8"
    )
    assert decoded is not None
    assert decoded["role"] == Atom("admin")
    assert decoded["ids"] == [1, 2, 3]


def make_app(*, secret_key_base: str, clock: Any) -> Any:
    """The app the testing snippet tests: a cart in the session."""
    from starlette.applications import Starlette

    from sessionware import SessionMiddleware, get_session

    async def cart(request: Request) -> Response:
        return JSONResponse(get_session(request).get("cart", []))

    async def add(request: Request) -> Response:
        session = get_session(request)
        session["cart"] = [*session.get("cart", []), int(request.path_params["item"])]
        return JSONResponse(session["cart"])

    app = Starlette(routes=[Route("/cart", cart), Route("/cart/{item}", add, methods=["POST"])])
    app.add_middleware(SessionMiddleware, secret_key_base=secret_key_base, clock=clock)
    return app


def _fake_clock() -> Any:
    from sessionware.testing import FakeClock

    return FakeClock()


TEST_FIXTURES: dict[str, Callable[[], Any]] = {
    "session_secret": lambda: secrets.token_urlsafe(64),
    "session_clock": _fake_clock,
}


@exercise("def test_the_cart(", make_app=make_app)
def the_testing_snippet(namespace: dict[str, Any]) -> None:
    assert callable(namespace["test_the_cart"])  # and it ran, with the plugin's fixtures


@exercise('@app.post("/cart/<item>")', authenticate=flask_authenticate)
def flask_setup(namespace: dict[str, Any]) -> None:
    client = namespace["app"].test_client()
    reply = client.post("/cart/apple")
    assert reply.json == ["apple"]
    session_cookie(reply)
    assert client.post("/cart/pear").json == ["apple", "pear"]
    assert client.post("/login").status_code == 302


@exercise("def stripe_webhook():")
def flask_csrf(namespace: dict[str, Any]) -> None:
    app = namespace["app"]
    app.add_url_rule("/form", "form", lambda: app.jinja_env.from_string("{{ csrf_input() }}").render())
    app.add_url_rule("/submit", "submit", lambda: "accepted", methods=["POST"])
    client = app.test_client()
    assert client.post("/webhooks/stripe").status_code == 204  # exempt
    assert client.post("/submit").status_code == 403
    token = re.search(r'value="([^"]+)"', client.get("/form").get_data(as_text=True))
    assert token is not None
    assert client.post("/submit", data={"_csrf_token": token.group(1)}).get_data(as_text=True) == "accepted"


@exercise("from sessionware.starlette import SessionMiddleware")
def starlette_drop_in(namespace: dict[str, Any]) -> None:
    async def put(request: Request) -> Response:
        request.session["n"] = 1
        return PlainTextResponse("ok")

    async def read(request: Request) -> Response:
        return JSONResponse(dict(request.session))

    app = namespace["app"]
    app.router.routes.extend([Route("/put", put, methods=["POST"]), Route("/", read)])
    client = TestClient(app, base_url="https://testserver")  # https_only=True
    assert "secure" in session_cookie(client.post("/put")).lower()
    assert client.get("/").json() == {"n": 1}


@exercise("MemoryStore(max_sessions=20_000)")
def memory_bound(namespace: dict[str, Any]) -> None:
    from sessionware import MemoryStore

    assert isinstance(namespace["store"], MemoryStore)


@exercise("deleted = store.purge_expired()")
def postgres_purge(namespace: dict[str, Any]) -> None:
    assert namespace["deleted"] == 0  # a fresh table


@exercise('RedisStore(os.environ["REDIS_URL"])')
def redis_store(namespace: dict[str, Any]) -> None:
    store = namespace["store"]
    try:
        assert store.load(uuid.uuid4().hex) is None  # a round trip to the real server
    finally:
        store.close()


@exercise("Sessionware.from_flask_session(app")
def flask_session_moved(namespace: dict[str, Any]) -> None:
    """A session the real Flask-Session wrote with the block's settings survives the move."""
    import flask
    import flask_session

    app = namespace["app"]
    old = flask.Flask("old")
    old.config.update(app.config)
    flask_session.Session(old)

    @old.get("/login")
    def login() -> str:
        flask.session["_user_id"] = "7"
        return "ok"

    old_client = old.test_client()
    old_client.get("/login")
    cookie = old_client.get_cookie("session")
    assert cookie is not None

    def who() -> dict[str, Any]:
        from sessionware.flask import current_session

        return {"user": current_session().user_id}

    app.add_url_rule("/", view_func=who)
    client = app.test_client()
    client.set_cookie("session", cookie.value)
    assert client.get("/").get_json() == {"user": "7"}


def _legacy_app_answers(namespace: dict[str, Any], cookie: str) -> None:
    async def read(request: Request) -> Response:
        return JSONResponse({"data": dict(request.session)})

    app = namespace["app"]
    app.router.routes.append(Route("/", read))
    with TestClient(app) as client:
        reply = client.get("/", headers={"Cookie": cookie})  # not an old session: anonymous
    assert reply.status_code == 200
    assert reply.json() == {"data": {}}


@exercise("legacy=StarsessionsRedis(")
def starsessions_moved(namespace: dict[str, Any]) -> None:
    _legacy_app_answers(namespace, "session=" + uuid.uuid4().hex)


@exercise('DjangoDB("sqlite:///db.sqlite3"')
def django_moved(namespace: dict[str, Any]) -> None:
    import sqlite3

    with sqlite3.connect("db.sqlite3") as connection:  # Django's table, as migrate makes it
        connection.execute(
            "CREATE TABLE django_session"
            " (session_key varchar(40) PRIMARY KEY, session_data text, expire_date datetime)"
        )
    _legacy_app_answers(namespace, "sessionid=" + "a" * 32)


@exercise('"legacy": DjangoDB(database=')
def django_engine_moved(namespace: dict[str, Any]) -> None:
    import sqlite3
    import time

    from sessionware.legacy import DjangoDB

    reader = namespace["SESSIONWARE"]["legacy"]
    assert isinstance(reader, DjangoDB)
    assert reader.cookie_name == "sessionid"
    with sqlite3.connect("db.sqlite3") as connection:  # Django's table, as migrate makes it
        connection.execute(
            "CREATE TABLE django_session"
            " (session_key varchar(40) PRIMARY KEY, session_data text, expire_date datetime)"
        )
    assert reader.read("a" * 32, int(time.time())) is None  # no such session: anonymous


@exercise("async def theft(event")
def events_hooks(namespace: dict[str, Any], caplog: Any = None) -> None:
    from starlette.routing import Route as _Route

    async def login(request: Request) -> Response:
        from sessionware import get_session

        get_session(request).log_in(42)
        return PlainTextResponse("ok")

    app = namespace["app"]
    app.router.routes.append(_Route("/login", login))
    seen: list[Any] = []
    namespace["audit"].addHandler(_ListHandler(seen))
    namespace["audit"].setLevel("INFO")
    TestClient(app).get("/login")
    assert any("log_in user=42 reason=password path=/login" in line for line in seen)


class _ListHandler:
    """A logging handler that keeps each message (enough for logging.Logger.addHandler)."""

    level = 0

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def handle(self, record: Any) -> None:
        self.seen.append(record.getMessage())


@exercise("telemetry=OpenTelemetry(),")
def events_telemetry(namespace: dict[str, Any]) -> None:
    assert TestClient(namespace["app"]).get("/nothing").status_code == 404  # runs, records nothing


@exercise("async def log_out_everywhere_else")
def devices_page(namespace: dict[str, Any]) -> None:
    from starlette.routing import Route as _Route

    async def login(request: Request) -> Response:
        from sessionware import get_session

        get_session(request).log_in(42)
        return PlainTextResponse("ok")

    app = namespace["app"]
    app.router.routes.append(_Route("/login", login))
    laptop = TestClient(app, headers={"user-agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/128.0"})
    phone = TestClient(app)
    laptop.get("/login")
    phone.get("/login")
    listing = laptop.get("/sessions").json()
    assert len(listing) == 2
    mine = next(row for row in listing if row["this device"])
    assert mine["device"] == "Firefox 128 on Windows"
    assert mine["network"] == "unknown"  # the test client's peer, "testclient", is no address
    assert laptop.get("/others").json() == {"ended": 1}
    assert len(laptop.get("/sessions").json()) == 1


@exercise("async def change_address")
def remember_me(namespace: dict[str, Any]) -> None:
    client = TestClient(namespace["app"])
    client.get("/login")
    assert client.get("/email").text == "changed"
    client.cookies.delete("session")
    assert client.get("/email").status_code == 401  # logged in again by the remember-me cookie
