"""The sessionware demo: a Starlette app on the embedded SQLite store.

Run it with ``make demo`` (or ``python -m uvicorn --factory examples.demo.app:create_app``) and
open http://127.0.0.1:8000. Log in as the demo user, bump a counter kept in the
session, see what the session holds and when it expires, log out.

The secret and the session database live in ``.demo/`` in the working
directory, so sessions survive a restart. Set ``SECRET_KEY_BASE`` to use your
own secret and ``SESSIONWARE_DEMO_DIR`` to keep the files elsewhere.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionware import Session, SessionMiddleware, SQLiteStore, get_session

DEMO_USER = "demo"
DEMO_PASSWORD = "sessionware"  # shown on the page: this is a demo, not an account


def _data_dir() -> Path:
    path = Path(os.environ.get("SESSIONWARE_DEMO_DIR", ".demo"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret(directory: Path) -> str:
    if "SECRET_KEY_BASE" in os.environ:
        return os.environ["SECRET_KEY_BASE"]
    path = directory / "secret_key_base"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


async def _form(request: Request) -> dict[str, str]:
    """Read an application/x-www-form-urlencoded body (no extra dependency needed)."""
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    left = timestamp - int(time.time())
    moment = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    return f"{moment} (in {left // 60} min {left % 60} s)" if left > 0 else moment


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware demo</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }}
 pre {{ background: #f4f4f4; padding: .75rem; overflow-x: auto; }}
 form {{ display: inline-block; margin: .25rem .5rem .25rem 0; }}
 .note {{ color: #555; font-size: .9rem; }}
 .error {{ color: #a00; }}
</style></head>
<body>
<h1>sessionware demo</h1>
{body}
<h2>What the session holds</h2>
<pre id="session">{data}</pre>
<table>
 <tr><td>Session started</td><td id="created">{created}</td></tr>
 <tr><td>Last recorded activity</td><td id="active">{active}</td></tr>
 <tr><td>Expires</td><td id="expires">{expires}</td></tr>
</table>
<p class="note">Store: SQLite ({db}). Policy: 30 minutes idle, 12 hours absolute (NIST AAL2).
The cookie holds only a signed random ID; the data stays on the server.</p>
</body></html>
"""


def _page(session: Session, body: str, db: str) -> HTMLResponse:
    data = json.dumps(dict(session), indent=2, sort_keys=True) if not session.is_new else "(no session yet)"
    return HTMLResponse(
        PAGE.format(
            body=body,
            data=html.escape(data),
            created=_when(session.created_at) if not session.is_new else "-",
            active=_when(session.last_active) if not session.is_new else "-",
            expires=_when(session.expires_at) if not session.is_new else "-",
            db=html.escape(db),
        )
    )


def create_app(directory: Path | None = None) -> Starlette:
    directory = directory or _data_dir()
    db = str(directory / "sessions.db")

    async def home(request: Request) -> Response:
        session = get_session(request)
        error = request.query_params.get("error")
        if "user" in session:
            body = f"""
<p>Logged in as <strong id="user">{html.escape(session["user"])}</strong>.</p>
<p>Counter: <strong id="counter">{session.get("counter", 0)}</strong></p>
<form method="post" action="/counter"><button id="bump">Bump the counter</button></form>
<form method="post" action="/logout"><button id="logout">Log out</button></form>"""
        else:
            notice = '<p class="error">Wrong user name or password.</p>' if error else ""
            body = f"""{notice}
<p>You are not logged in. The demo user is <code>{DEMO_USER}</code>,
password <code>{DEMO_PASSWORD}</code>.</p>
<form method="post" action="/login">
 <input name="username" placeholder="user name" value="{DEMO_USER}" autocomplete="username">
 <input name="password" type="password" placeholder="password" autocomplete="current-password">
 <button id="login">Log in</button>
</form>"""
        return _page(session, body, db)

    async def login(request: Request) -> Response:
        form = await _form(request)
        valid_user = secrets.compare_digest(form.get("username", ""), DEMO_USER)
        valid_password = secrets.compare_digest(form.get("password", ""), DEMO_PASSWORD)
        if not (valid_user and valid_password):
            return RedirectResponse("/?error=1", status_code=303)
        session = get_session(request)
        session.renew()  # a new session ID on log-in: the pre-login one (fixation) dies
        session["user"] = DEMO_USER
        session["logged_in_at"] = int(time.time())
        return RedirectResponse("/", status_code=303)

    async def counter(request: Request) -> Response:
        session = get_session(request)
        if "user" in session:
            session["counter"] = session.get("counter", 0) + 1
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        get_session(request).drop()  # the record is deleted and the cookie expired
        return RedirectResponse("/", status_code=303)

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/counter", counter, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
        ]
    )
    app.add_middleware(SessionMiddleware, secret_key_base=_secret(directory), store=SQLiteStore(db))
    return app
