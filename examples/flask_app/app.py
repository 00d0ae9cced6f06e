"""sessionware on Flask: a counter, log-in and log-out, CSRF-protected forms and flash
messages, with ``flask.session``, ``flask.flash`` and Jinja templates as usual.

``Sessionware(app, ...)`` makes ``flask.session`` a sessionware session (``log_in``,
``log_out``... through ``current_session()``, typed); Flask's ``flash()`` and
``get_flashed_messages()`` keep working on it.

Run it (from the repository root)::

    python -m examples.flask_app.app

and open http://127.0.0.1:8005 (``PORT`` picks another port); log in as ``alice``, password
``wonderland``. Sessions live in ``sessions.db`` (SQLite) in the working directory. The
secret comes from ``SECRET_KEY_BASE`` (make one with ``python -m sessionware gen-secret``);
without it a random one is made, with a warning on stderr: sessions then end at every
restart and break across workers (see ``examples/settings.py``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, flash, redirect, render_template_string, request, session
from markupsafe import Markup
from werkzeug.wrappers import Response

from examples import settings
from sessionware import SQLiteStore, csrf_input
from sessionware.flask import Sessionware, current_session

USERS = {"alice": "wonderland"}  # an example: use your user table and a password hash

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionware on Flask</title></head>
<body>
<h1>sessionware on Flask</h1>
{% for kind, message in get_flashed_messages(with_categories=true) %}
<p class="flash" id="flash-{{ kind }}">{{ message }}</p>
{% endfor %}
{% if user is none %}
<form method="post" action="/login">{{ csrf_input() }}
 <input name="username" placeholder="user name" autocomplete="username">
 <input name="password" type="password" placeholder="password" autocomplete="current-password">
 <button>Log in</button>
</form>
{% else %}
<p>Logged in as <b id="user">{{ user }}</b>.</p>
<form method="post" action="/logout">{{ csrf_input() }}<button>Log out</button></form>
{% endif %}
<p>Counter: <b id="counter">{{ session.get("counter", 0) }}</b></p>
<form method="post" action="/counter">{{ csrf_input() }}<button>Count</button></form>
</body></html>
"""


def create_app(*, secret_key_base: str | None = None, database: str | Path = "sessions.db") -> Flask:
    """The app; tests pass their own secret and database."""
    app = Flask(__name__)
    Sessionware(
        app,
        secret_key_base=settings.secret_key_base(secret_key_base),
        store=SQLiteStore(database),
        csrf=True,  # every unsafe request needs this session's token (form field or header)
    )

    def form_csrf_input() -> Markup:
        """A hidden field with a fresh masked token: ``{{ csrf_input() }}`` in every form."""
        field: Markup = csrf_input(current_session())
        return field

    app.jinja_env.globals["csrf_input"] = form_csrf_input

    @app.get("/")
    def home() -> str:
        return render_template_string(PAGE, user=current_session().user_id)

    @app.post("/login")
    def login() -> Response:
        username = request.form.get("username", "")
        password = USERS.get(username)
        if password is None or not secrets.compare_digest(request.form.get("password", ""), password):
            flash("Wrong user name or password.", "error")
            return redirect("/", 303)
        # A new session ID (the pre-log-in one dies), a new CSRF secret, bound to the user;
        # the counter is the only data kept from before.
        current_session().log_in(username, keep=["counter"])
        flash(f"Welcome, {username}.", "info")
        return redirect("/", 303)

    @app.post("/counter")
    def count() -> Response:
        session["counter"] = session.get("counter", 0) + 1
        return redirect("/", 303)

    @app.post("/logout")
    def logout() -> Response:
        current_session().log_out()  # the record is deleted; the flash goes to a fresh session
        flash("You are logged out.", "info")
        return redirect("/", 303)

    return app


PORT = 8005  #: this example's own port (``$PORT`` overrides it), so several run at once


if __name__ == "__main__":
    # Flask's development server (it prints its own "development server" warning).
    create_app().run(host="127.0.0.1", port=settings.port(PORT))
