"""sessionware on Quart: a counter, log-in and log-out, CSRF-protected forms, flash
messages and a websocket that reads the session.

sessionware is ASGI middleware around ``app.asgi_app``; handlers find the session with
``get_session(request)`` (or ``websocket``). Quart's own ``quart.session`` and
``quart.flash`` are a separate, cookie-only session: use sessionware's instead, as here.

Run it (from the repository root)::

    python -m examples.quart_app.app

and open http://127.0.0.1:8004 (``PORT`` picks another port); log in as ``alice``, password
``wonderland``. The session lives in an encrypted cookie; log-outs are recorded in
``revocations.db`` (SQLite) in the working directory, so a copy of a logged-out cookie stops
working. The secret comes from ``SECRET_KEY_BASE`` (make one with ``python -m sessionware
gen-secret``); without it a random one is made, with a warning on stderr: sessions then end
at every restart and break across workers (see ``examples/settings.py``).
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import Any

from quart import Quart, redirect, request, websocket
from quart.typing import ResponseReturnValue

from examples import settings
from sessionware import (
    CookieStore,
    CSRFMiddleware,
    SessionMiddleware,
    SQLiteStore,
    csrf_input,
    get_flashes,
    get_session,
    put_flash,
)

USERS = {"alice": "wonderland"}  # an example: use your user table and a password hash

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware on Quart</title></head>
<body>
<h1>sessionware on Quart</h1>
{flashes}
{account}
<p>Counter: <b id="counter">{counter}</b></p>
<form method="post" action="/counter">{csrf}<button>Count</button></form>
<p id="greeting">(the websocket's greeting comes here)</p>
<script>
  const socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
  socket.onmessage = (event) => {{ document.getElementById("greeting").textContent = event.data; }};
</script>
</body></html>
"""

LOGGED_IN = """<p>Logged in as <b id="user">{user}</b>.</p>
<form method="post" action="/logout">{csrf}<button>Log out</button></form>"""

LOGGED_OUT = """<form method="post" action="/login">{csrf}
 <input name="username" placeholder="user name" autocomplete="username">
 <input name="password" type="password" placeholder="password" autocomplete="current-password">
 <button>Log in</button>
</form>"""


def create_app(*, secret_key_base: str | None = None, database: str | Path = "revocations.db") -> Quart:
    """The app; tests pass their own secret and database."""
    app = Quart(__name__)

    @app.get("/")
    async def home() -> ResponseReturnValue:
        session = get_session(request)
        csrf = csrf_input(session)  # a hidden field with a fresh masked token
        flashes = "".join(
            f'<p class="flash" id="flash-{html.escape(kind)}">{html.escape(message)}</p>'
            for kind, message in get_flashes(session).items()
        )
        if session.user_id is None:
            account = LOGGED_OUT.format(csrf=csrf)
        else:
            account = LOGGED_IN.format(user=html.escape(str(session.user_id)), csrf=csrf)
        counter = session.get("counter", 0)
        return PAGE.format(flashes=flashes, account=account, counter=counter, csrf=csrf)

    @app.post("/login")
    async def login() -> ResponseReturnValue:
        session = get_session(request)
        form = await request.form
        username = form.get("username", "")
        password = USERS.get(username)
        if password is None or not secrets.compare_digest(form.get("password", ""), password):
            put_flash(session, "error", "Wrong user name or password.")
            return redirect("/", 303)
        # A new session ID (the pre-log-in one dies), a new CSRF secret, bound to the user;
        # the counter is the only data kept from before.
        session.log_in(username, keep=["counter"])
        put_flash(session, "info", f"Welcome, {username}.")
        return redirect("/", 303)

    @app.post("/counter")
    async def count() -> ResponseReturnValue:
        session = get_session(request)
        session["counter"] = session.get("counter", 0) + 1
        return redirect("/", 303)

    @app.post("/logout")
    async def logout() -> ResponseReturnValue:
        session = get_session(request)
        session.log_out()  # revoked; the flash goes to a fresh session
        put_flash(session, "info", "You are logged out.")
        return redirect("/", 303)

    @app.websocket("/ws")
    async def greet() -> None:
        user = get_session(websocket).user_id  # read-only in a websocket: it cannot set a cookie
        await websocket.accept()
        await websocket.send(f"Hello, {user}!" if user is not None else "Hello, stranger!")

    # sessionware wraps Quart's ASGI app; CSRFMiddleware goes inside SessionMiddleware.
    # (Quart types ASGI scopes as TypedDicts, hence the ignores.)
    quart_asgi: Any = app.asgi_app
    app.asgi_app = SessionMiddleware(  # type: ignore[method-assign, assignment]
        CSRFMiddleware(quart_asgi),
        secret_key_base=settings.secret_key_base(secret_key_base),
        store=CookieStore(revocation=SQLiteStore(database)),
    )
    return app


PORT = 8004  #: this example's own port (``$PORT`` overrides it), so several run at once


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=settings.port(PORT))
