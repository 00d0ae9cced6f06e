"""The sessionware demo: a Starlette app on the embedded SQLite store.

Run it with ``make demo`` (or ``python -m uvicorn --factory examples.demo.app:create_app``)
and open http://127.0.0.1:8000. Log in as the demo user, bump a counter kept in
the session, see what the session holds and when it expires, open a "sudo mode"
page that asks for the password again after five minutes, list the places you
are logged in and log them out, log out. Every form is CSRF-protected; log-in
and log-out leave a flash message.

Sessions are device-bound where the browser supports it (Device Bound Session
Credentials, over https: ``DBSC``); ``SESSIONWARE_DEMO_DBSC_LIFETIME`` sets the
bound cookie's lifetime in seconds (default 600; the browser test makes it 2).

The secret and the session database live in ``.demo/`` in the working
directory, so sessions survive a restart. Set ``SECRET_KEY_BASE`` to use your
own secret and ``SESSIONWARE_DEMO_DIR`` to keep the files elsewhere; ``make
demo PORT=8080`` serves it on another port.

It needs only ``pip install -e '.[demo]'`` (Starlette and uvicorn), which is
what ``make demo`` installs. A refused form (the CSRF check) gets a friendly
page through ``CSRFMiddleware(error_app=...)``. The sessions page is the
device list of ``docs/devices.md``: each session's device (``SessionInfo.device``),
when it was first and last seen, how it logged in, its network (the IP's /24 or /48
only, ``record_ip=True``), and buttons to log out one device or every other one.
Ticking "remember me" at log-in keeps this browser logged in for 30 days after its
session ends (``RememberMe``, ``docs/remember-me.md``).
"""

from __future__ import annotations

import html
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sessionware import (
    DBSC,
    CSRFError,
    CSRFMiddleware,
    RememberMe,
    Session,
    SessionInfo,
    SessionMiddleware,
    SQLiteStore,
    csrf_input,
    get_flashes,
    get_session,
    put_flash,
    user_sessions,
)

DEMO_USER = "demo"
DEMO_PASSWORD = "sessionware"  # shown on the page: this is a demo, not an account
SUDO_MAX_AGE = 5 * 60
REMEMBER_DAYS = 30


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
    """An application/x-www-form-urlencoded body (no extra dependency needed)."""
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _password_ok(form: dict[str, str]) -> bool:
    return secrets.compare_digest(form.get("password", ""), DEMO_PASSWORD)


def relative_time(timestamp: int, now: int) -> str:
    """``timestamp`` as people say it: "just now", "5 minutes ago", "in 29 minutes"."""
    seconds = abs(timestamp - now)
    if seconds < 60:
        return "just now" if timestamp <= now else "in less than a minute"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            amount = f"{count} {unit}{'s' if count != 1 else ''}"
            break
    return f"{amount} ago" if timestamp < now else f"in {amount}"


def _time_cell(timestamp: int | None, now: int, element_id: str = "") -> str:
    """A table cell with a relative time, and the exact one (UTC) as its tooltip."""
    id_attribute = f' id="{element_id}"' if element_id else ""
    if timestamp is None:
        return f"<td{id_attribute}>never</td>"
    exact = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
    return f'<td{id_attribute} title="{exact}">{relative_time(timestamp, now)}</td>'


HOW = {"password": "password", "remember": "remember me"}


def _device_cell(info: SessionInfo) -> str:
    """The device as people name it ("Chrome 156 on Linux"), the raw user agent as its tooltip."""
    label = info.device.label if info.device is not None else "Unknown device"
    return f'<td class="device" title="{html.escape(info.user_agent or "")}">{html.escape(label)}</td>'


def _post(request: Request, action: str, label: str, element_id: str, fields: str = "") -> str:
    """A one-button form, CSRF token included."""
    return (
        f'<form method="post" action="{action}">{csrf_input(request)}{fields}'
        f'<button id="{element_id}">{html.escape(label)}</button></form>'
    )


STYLE = """<style>
 body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }}
 pre {{ background: #f4f4f4; padding: .75rem; overflow-x: auto; }}
 form {{ display: inline-block; margin: .25rem .5rem .25rem 0; }}
 nav a {{ margin-right: 1rem; }}
 td, th {{ padding: .2rem .6rem .2rem 0; text-align: left; }}
 .note {{ color: #555; font-size: .9rem; }}
 .flash {{ padding: .5rem .75rem; border-radius: .3rem; background: #eef6ee; }}
 .flash.error {{ background: #f8e8e8; }}
</style>"""

HEAD = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
"""
    + STYLE
    + """</head>
<body>"""
)

PAGE = (
    HEAD.replace("{title}", "sessionware demo")
    + """
<h1>sessionware demo</h1>
<nav><a href="/">Home</a><a href="/sessions">Where I am logged in</a><a href="/sudo">Sudo mode</a></nav>
{flashes}
{body}
<h2>What the session holds</h2>
<pre id="session">{data}</pre>
<table>
 <tr><td>Session started</td>{created}</tr>
 <tr><td>Last recorded activity</td>{active}</tr>
 <tr><td>Expires</td>{expires}</tr>
</table>
<p class="note">Store: SQLite ({db}). Policy: 30 minutes idle, 12 hours absolute (NIST AAL2).
The cookie holds only a signed random ID; the data stays on the server. Forms carry a masked
CSRF token, new on every page.</p>
</body></html>
"""
)


def _bound(session: Session) -> str:
    if session.device_bound:
        return (
            '<p id="bound">This session is bound to this device (DBSC): '
            "a copy of its cookie is useless elsewhere.</p>"
        )
    return (
        '<p id="unbound" class="note">This session is not device-bound '
        "(DBSC needs https and a browser that supports it).</p>"
    )


def _remembered(session: Session) -> str:
    if session.how == "remember":
        return (
            '<p id="remembered" class="note">Logged in again by your remember-me cookie '
            "(your session had ended); sudo mode asks for your password.</p>"
        )
    return ""


def dbsc_lifetime() -> int:
    """The bound cookie's lifetime: ``SESSIONWARE_DEMO_DBSC_LIFETIME`` seconds, 600 by default."""
    return int(os.environ.get("SESSIONWARE_DEMO_DBSC_LIFETIME", "600"))


def _page(request: Request, body: str, db: str, now: int) -> HTMLResponse:
    session = get_session(request)
    flashes = "".join(
        f'<p class="flash {html.escape(kind)}" id="flash-{html.escape(kind)}">{html.escape(message)}</p>'
        for kind, message in get_flashes(request).items()
    )
    new = session.is_new and not dict(session)
    data = "(no session yet)" if new else json.dumps(_visible(session), indent=2, sort_keys=True)
    return HTMLResponse(
        PAGE.format(
            flashes=flashes,
            body=body,
            data=html.escape(data),
            created='<td id="created">-</td>' if new else _time_cell(session.created_at, now, "created"),
            active='<td id="active">-</td>' if new else _time_cell(session.last_active, now, "active"),
            expires='<td id="expires">-</td>' if new else _time_cell(session.expires_at, now, "expires"),
            db=html.escape(db),
        )
    )


REFUSED = (
    HEAD.replace("{title}", "Please try again - sessionware demo")
    + """
<h1>That form could not be accepted</h1>
<p id="refused">Nothing was changed. The form was probably out of date -- you logged in or out
in another tab since it was shown -- or it was sent from another website.</p>
<p><a href="/" id="back">Go back to the demo</a> and try again; the page will have a fresh form.</p>
<p class="note">Details for developers: the CSRF check refused the request
(<span id="csrf-reason">{reason}</span>).</p>
</body></html>
"""
)


async def csrf_refused(scope: Scope, receive: Receive, send: Send) -> None:
    """``CSRFMiddleware``'s ``error_app``: a friendly 403 page instead of the plain-text checklist."""
    error: CSRFError = scope["sessionware.csrf_error"]
    page = REFUSED.format(reason=html.escape(error.reason))
    response = HTMLResponse(page, status_code=403, headers={"cache-control": "no-store"})
    await response(scope, receive, send)


def _visible(session: Session) -> dict[str, object]:
    shown: dict[str, object] = {key: value for key, value in session.items() if key != "_csrf_token"}
    if "_csrf_token" in session:
        shown["_csrf_token"] = "(the CSRF secret; pages only ever show masked tokens)"
    return shown


def create_app(directory: Path | None = None, clock: Callable[[], float] = time.time) -> Starlette:
    """The demo app; ``clock`` lets tests move time."""
    directory = directory or _data_dir()
    db = str(directory / "sessions.db")

    async def home(request: Request) -> Response:
        session = get_session(request)
        if session.user_id is not None:
            body = f"""
<p>Logged in as <strong id="user">{html.escape(str(session.user_id))}</strong>.</p>
{_remembered(session)}
{_bound(session)}
<p>Counter: <strong id="counter">{session.get("counter", 0)}</strong></p>
{_post(request, "/counter", "Bump the counter", "bump")}
{_post(request, "/logout", "Log out", "logout")}"""
        else:
            body = f"""
<p>You are not logged in. The demo user is <code>{DEMO_USER}</code>,
password <code>{DEMO_PASSWORD}</code>.</p>
<form method="post" action="/login">{csrf_input(request)}
 <input name="username" placeholder="user name" value="{DEMO_USER}" autocomplete="username">
 <input name="password" type="password" placeholder="password" autocomplete="current-password">
 <label><input type="checkbox" name="remember" id="remember"> remember me</label>
 <button id="login">Log in</button>
</form>"""
        return _page(request, body, db, int(clock()))

    async def login(request: Request) -> Response:
        form = await _form(request)
        if not (secrets.compare_digest(form.get("username", ""), DEMO_USER) and _password_ok(form)):
            put_flash(request, "error", "Wrong user name or password.")
            return RedirectResponse("/", status_code=303)
        session = get_session(request)
        # New session ID, new CSRF secret, bound to the user; "remember me": a remember-me cookie too.
        session.log_in(DEMO_USER, remember=form.get("remember") == "on")
        session["logged_in_at"] = int(time.time())
        put_flash(request, "info", f"Welcome, {DEMO_USER}.")
        return RedirectResponse("/", status_code=303)

    async def counter(request: Request) -> Response:
        session = get_session(request)
        if session.user_id is not None:
            session["counter"] = session.get("counter", 0) + 1
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        get_session(request).log_out()  # record deleted; what follows goes to a fresh session
        put_flash(request, "info", "You are logged out.")
        return RedirectResponse("/", status_code=303)

    async def sessions(request: Request) -> Response:
        session = get_session(request)
        if session.user_id is None:
            put_flash(request, "error", "Log in first.")
            return RedirectResponse("/", status_code=303)
        listing = await user_sessions(request).list(session.user_id, current=session)
        now = int(clock())
        rows = "".join(
            "<tr class='session'>"
            + _device_cell(info)
            + _time_cell(info.first_seen, now)
            + _time_cell(info.last_seen, now)
            + f'<td class="how">{html.escape(HOW.get(info.how, info.how))}</td>'
            + f'<td class="network">{html.escape(info.ip or "unknown")}</td><td>'
            + (
                '<strong class="current">this device</strong>'
                if info.current
                else _post(
                    request,
                    "/sessions/revoke",
                    "Log out this device",
                    f"revoke-{info.handle}",
                    f'<input type="hidden" name="handle" value="{html.escape(info.handle)}">',
                )
            )
            + "</td></tr>"
            for info in listing
        )
        body = f"""
<h2>Where you are logged in</h2>
<table id="sessions"><tr><th>Device</th><th>First seen</th><th>Last seen</th><th>How</th>
<th>Network</th><th></th></tr>{rows}</table>
{_post(request, "/sessions/revoke-others", "Log out everywhere else", "revoke-others")}
<p class="note">Network: the address's /24 (IPv6: /48) only. "Log out everywhere else" also
ends every other browser's remember-me cookie.</p>"""
        return _page(request, body, db, int(clock()))

    async def revoke(request: Request) -> Response:
        session = get_session(request)
        form = await _form(request)
        if session.user_id is not None and await user_sessions(request).revoke(
            session.user_id, form.get("handle", "")
        ):
            put_flash(request, "info", "That session is logged out.")
        return RedirectResponse("/sessions", status_code=303)

    async def revoke_others(request: Request) -> Response:
        session = get_session(request)
        if session.user_id is not None:
            count = await user_sessions(request).revoke_all(session.user_id, keep=session)
            put_flash(request, "info", f"Logged out {count} other session(s).")
        return RedirectResponse("/sessions", status_code=303)

    async def sudo(request: Request) -> Response:
        session = get_session(request)
        if session.user_id is None:
            put_flash(request, "error", "Log in first.")
            return RedirectResponse("/", status_code=303)
        # A remember-me log-in counts as an authentication for recently_authenticated(), but
        # no password was typed: until it is (reauth below), sudo mode asks for it.
        remembered = session.how == "remember" and "password_confirmed" not in session
        if remembered or not session.recently_authenticated(SUDO_MAX_AGE):
            put_flash(request, "info", "Please confirm your password to continue.")
            return RedirectResponse("/reauth", status_code=303)
        left = SUDO_MAX_AGE - (int(clock()) - (session.auth_at or 0))
        body = f"""<h2 id="sudo">Sensitive settings</h2>
<p>You confirmed your password recently; this page stays open for another {left} s.</p>"""
        return _page(request, body, db, int(clock()))

    async def reauth(request: Request) -> Response:
        session = get_session(request)
        if request.method == "POST":
            if session.user_id is not None and _password_ok(await _form(request)):
                session.reauthenticated()  # new session ID; both timeouts restart
                session["password_confirmed"] = True
                return RedirectResponse("/sudo", status_code=303)
            put_flash(request, "error", "Wrong password.")
            return RedirectResponse("/reauth", status_code=303)
        body = f"""<h2>Confirm your password</h2>
<form method="post" action="/reauth">{csrf_input(request)}
 <input name="password" type="password" placeholder="password" autocomplete="current-password">
 <button id="confirm">Confirm</button>
</form>"""
        return _page(request, body, db, int(clock()))

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/counter", counter, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/sessions", sessions),
            Route("/sessions/revoke", revoke, methods=["POST"]),
            Route("/sessions/revoke-others", revoke_others, methods=["POST"]),
            Route("/sudo", sudo),
            Route("/reauth", reauth, methods=["GET", "POST"]),
        ]
    )
    app.add_middleware(CSRFMiddleware, error_app=csrf_refused)
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=_secret(directory),
        store=SQLiteStore(db),
        clock=clock,
        dbsc=DBSC(bound_cookie_lifetime=dbsc_lifetime()),
        remember=RememberMe(max_age=REMEMBER_DAYS * 24 * 3600),
        record_ip=True,  # the network only (/24, /48): the sessions page's "Network" column
    )
    return app
