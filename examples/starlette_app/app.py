"""sessionware on Starlette: a counter, log-in and log-out, CSRF-protected forms, flash
messages and a websocket that reads the session.

Run it (from the repository root)::

    python -m examples.starlette_app.app

and open http://127.0.0.1:8001 (``PORT`` picks another port); log in as ``alice``, password
``wonderland``. Sessions live in ``sessions.db`` (SQLite) in the working directory. The
secret comes from ``SECRET_KEY_BASE`` (make one with ``python -m sessionware gen-secret``);
without it a random one is made, with a warning on stderr: sessions then end at every
restart and break across workers (see ``examples/settings.py``).
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from examples import settings
from sessionware import (
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
<html lang="en"><head><meta charset="utf-8"><title>sessionware on Starlette</title></head>
<body>
<h1>sessionware on Starlette</h1>
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


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body (Starlette's request.form() needs python-multipart)."""
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


async def home(request: Request) -> Response:
    session = get_session(request)
    csrf = csrf_input(request)  # a hidden field with a fresh masked token
    flashes = "".join(
        f'<p class="flash" id="flash-{html.escape(kind)}">{html.escape(message)}</p>'
        for kind, message in get_flashes(request).items()
    )
    if session.user_id is None:
        account = LOGGED_OUT.format(csrf=csrf)
    else:
        account = LOGGED_IN.format(user=html.escape(str(session.user_id)), csrf=csrf)
    counter = session.get("counter", 0)
    return HTMLResponse(PAGE.format(flashes=flashes, account=account, counter=counter, csrf=csrf))


async def login(request: Request) -> Response:
    form = await form_fields(request)
    username = form.get("username", "")
    password = USERS.get(username)
    if password is None or not secrets.compare_digest(form.get("password", ""), password):
        put_flash(request, "error", "Wrong user name or password.")
        return RedirectResponse("/", status_code=303)
    # A new session ID (the pre-log-in one dies), a new CSRF secret, bound to the user;
    # the counter is the only data kept from before.
    get_session(request).log_in(username, keep=["counter"])
    put_flash(request, "info", f"Welcome, {username}.")
    return RedirectResponse("/", status_code=303)


async def count(request: Request) -> Response:
    session = get_session(request)
    session["counter"] = session.get("counter", 0) + 1
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    get_session(request).log_out()  # the record is deleted; the flash goes to a fresh session
    put_flash(request, "info", "You are logged out.")
    return RedirectResponse("/", status_code=303)


async def greet(websocket: WebSocket) -> None:
    session = get_session(websocket)  # read-only in a websocket: it cannot set a cookie
    await websocket.accept()
    user = session.user_id
    await websocket.send_text(f"Hello, {user}!" if user is not None else "Hello, stranger!")
    await websocket.close()


def create_app(*, secret_key_base: str | None = None, database: str | Path = "sessions.db") -> Starlette:
    """The app; tests pass their own secret and database."""
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/counter", count, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            WebSocketRoute("/ws", greet),
        ]
    )
    app.add_middleware(CSRFMiddleware)  # added first: it runs inside SessionMiddleware
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=settings.secret_key_base(secret_key_base),
        store=SQLiteStore(database),
    )
    return app


PORT = 8001  #: this example's own port (``$PORT`` overrides it), so several run at once


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=settings.port(PORT))
