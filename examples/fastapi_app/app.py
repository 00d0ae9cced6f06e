"""sessionware on FastAPI: a counter, log-in and log-out, CSRF-protected forms, flash
messages, a websocket that reads the session, and typed session values as dependencies.

Run it (from the repository root)::

    python -m examples.fastapi_app.app

and open http://127.0.0.1:8002 (``PORT`` picks another port); log in as ``alice``, password
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
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from examples import settings
from sessionware import (
    CookieStore,
    CSRFMiddleware,
    SessionMiddleware,
    SQLiteStore,
    csrf_input,
    get_flashes,
    put_flash,
)
from sessionware.fastapi import SessionDep, session_value

USERS = {"alice": "wonderland"}  # an example: use your user table and a password hash

# A typed session value: the endpoint gets an int (0 when the session has none); a value of
# another type in the session would be the app's bug, answered with a 500.
Counter = Annotated[int, Depends(session_value("counter", int, default=0))]


class Me(BaseModel):
    user: str | int | None
    counter: int


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body (FastAPI's Form() needs python-multipart)."""
    body = (await request.body())[:10_000].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


Form = Annotated[dict[str, str], Depends(form_fields)]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware on FastAPI</title></head>
<body>
<h1>sessionware on FastAPI</h1>
{flashes}
{account}
<p>Counter: <b id="counter">{counter}</b></p>
<form method="post" action="/counter">{csrf}<button>Count</button></form>
<p id="greeting">(the websocket's greeting comes here)</p>
<p>The same as JSON: <a href="/api/me">/api/me</a></p>
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


def create_app(*, secret_key_base: str | None = None, database: str | Path = "revocations.db") -> FastAPI:
    """The app; tests pass their own secret and database."""
    app = FastAPI(title="sessionware on FastAPI")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, session: SessionDep, counter: Counter) -> str:
        csrf = csrf_input(request)  # a hidden field with a fresh masked token
        flashes = "".join(
            f'<p class="flash" id="flash-{html.escape(kind)}">{html.escape(message)}</p>'
            for kind, message in get_flashes(session).items()
        )
        if session.user_id is None:
            account = LOGGED_OUT.format(csrf=csrf)
        else:
            account = LOGGED_IN.format(user=html.escape(str(session.user_id)), csrf=csrf)
        return PAGE.format(flashes=flashes, account=account, counter=counter, csrf=csrf)

    @app.get("/api/me")
    def me(session: SessionDep, counter: Counter) -> Me:
        return Me(user=session.user_id, counter=counter)

    @app.post("/login")
    def login(session: SessionDep, form: Form) -> RedirectResponse:
        username = form.get("username", "")
        password = USERS.get(username)
        if password is None or not secrets.compare_digest(form.get("password", ""), password):
            put_flash(session, "error", "Wrong user name or password.")
            return RedirectResponse("/", status_code=303)
        # A new session ID (the pre-log-in one dies), a new CSRF secret, bound to the user;
        # the counter is the only data kept from before.
        session.log_in(username, keep=["counter"])
        put_flash(session, "info", f"Welcome, {username}.")
        return RedirectResponse("/", status_code=303)

    @app.post("/counter")
    def count(session: SessionDep, counter: Counter) -> RedirectResponse:
        session["counter"] = counter + 1
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    def logout(session: SessionDep) -> RedirectResponse:
        session.log_out()  # revoked; the flash goes to a fresh session
        put_flash(session, "info", "You are logged out.")
        return RedirectResponse("/", status_code=303)

    @app.websocket("/ws")
    async def greet(websocket: WebSocket, session: SessionDep) -> None:
        # The session is read-only in a websocket: it cannot set a cookie.
        await websocket.accept()
        user = session.user_id
        await websocket.send_text(f"Hello, {user}!" if user is not None else "Hello, stranger!")
        await websocket.close()

    app.add_middleware(CSRFMiddleware)  # added first: it runs inside SessionMiddleware
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=settings.secret_key_base(secret_key_base),
        store=CookieStore(revocation=SQLiteStore(database)),
    )
    return app


PORT = 8002  #: this example's own port (``$PORT`` overrides it), so several run at once


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=settings.port(PORT))
