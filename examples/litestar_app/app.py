"""sessionware on Litestar: a counter, log-in and log-out, CSRF-protected forms, flash
messages and a websocket that reads the session. ``request.session`` is the sessionware
session, and handlers can ask for it, typed, as ``session: SessionDep``.

Run it (from the repository root)::

    python -m examples.litestar_app.app

and open http://127.0.0.1:8003 (``PORT`` picks another port); log in as ``alice``, password
``wonderland``. Sessions live in ``sessions.db`` (SQLite) in the working directory. The
secret comes from ``SECRET_KEY_BASE`` (make one with ``python -m sessionware gen-secret``);
without it a random one is made, with a warning on stderr: sessions then end at every
restart and break across workers (see ``examples/settings.py``).
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import Annotated, Any

from litestar import Litestar, MediaType, Request, WebSocket, get, post, websocket
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from examples import settings
from sessionware import SQLiteStore, csrf_input, get_flashes, put_flash
from sessionware.litestar import SessionDep, SessionwarePlugin

USERS = {"alice": "wonderland"}  # an example: use your user table and a password hash

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware on Litestar</title></head>
<body>
<h1>sessionware on Litestar</h1>
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


@get("/", media_type=MediaType.HTML)
async def home(request: Request[Any, Any, Any], session: SessionDep) -> str:
    csrf = csrf_input(session)  # a hidden field with a fresh masked token
    flashes = "".join(
        f'<p class="flash" id="flash-{html.escape(kind)}">{html.escape(message)}</p>'
        for kind, message in get_flashes(session).items()
    )
    if session.user_id is None:
        account = LOGGED_OUT.format(csrf=csrf)
    else:
        account = LOGGED_IN.format(user=html.escape(str(session.user_id)), csrf=csrf)
    counter = request.session.get("counter", 0)  # request.session is the same Session
    return PAGE.format(flashes=flashes, account=account, counter=counter, csrf=csrf)


@post("/login")
async def login(session: SessionDep, data: Form) -> Redirect:
    username = data.get("username", "")
    password = USERS.get(username)
    if password is None or not secrets.compare_digest(data.get("password", ""), password):
        put_flash(session, "error", "Wrong user name or password.")
        return Redirect("/", status_code=303)
    # A new session ID (the pre-log-in one dies), a new CSRF secret, bound to the user;
    # the counter is the only data kept from before.
    session.log_in(username, keep=["counter"])
    put_flash(session, "info", f"Welcome, {username}.")
    return Redirect("/", status_code=303)


@post("/counter")
async def count(request: Request[Any, Any, Any]) -> Redirect:
    request.session["counter"] = request.session.get("counter", 0) + 1
    return Redirect("/", status_code=303)


@post("/logout")
async def logout(session: SessionDep) -> Redirect:
    session.log_out()  # the record is deleted; the flash goes to a fresh session
    put_flash(session, "info", "You are logged out.")
    return Redirect("/", status_code=303)


@websocket("/ws")
async def greet(socket: WebSocket[Any, Any, Any], session: SessionDep) -> None:
    # The session is read-only in a websocket: it cannot set a cookie.
    await socket.accept()
    user = session.user_id
    await socket.send_text(f"Hello, {user}!" if user is not None else "Hello, stranger!")
    await socket.close()


def create_app(*, secret_key_base: str | None = None, database: str | Path = "sessions.db") -> Litestar:
    """The app; tests pass their own secret and database."""
    secret = settings.secret_key_base(secret_key_base)
    return Litestar(
        route_handlers=[home, login, count, logout, greet],
        plugins=[
            SessionwarePlugin(
                secret_key_base=secret,
                store=SQLiteStore(database),
                csrf=True,  # CSRFMiddleware inside the session middleware
            )
        ],
    )


PORT = 8003  #: this example's own port (``$PORT`` overrides it), so several run at once


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=settings.port(PORT))
