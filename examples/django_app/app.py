"""sessionware on Django: Django's own ``SessionMiddleware`` and ``django.contrib.auth``,
with ``SESSION_ENGINE = "sessionware.django"`` -- a counter, log-in and log-out, and a
"your sessions" page listing the user's sessions (browser, address, last activity) with a
button to end each one, and one to log out everywhere else.

Run it (from the repository root)::

    python -m examples.django_app.app

and open http://127.0.0.1:8006 (``PORT`` picks another port); log in as ``alice``, password
``wonderland`` -- from two browsers, to see both on the sessions page. Sessions live in
``django-sessions.db`` (SQLite) in the working directory, users in ``django-users.db``. The
secret comes from ``SECRET_KEY_BASE`` (make one with ``python -m sessionware gen-secret``);
without it a random one is made, with a warning on stderr (see ``examples/settings.py``).
"""

from __future__ import annotations

import os
from typing import Any

PORT = 8006
USER, PASSWORD = "alice", "wonderland"  # an example user, made at start-up


def setup() -> Any:
    """Configure Django with the example's settings, create the tables and the example
    user; the WSGI application."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
    import django
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    if not User.objects.filter(username=USER).exists():
        User.objects.create_user(USER, password=PASSWORD)
    return get_wsgi_application()


def main() -> None:
    from wsgiref.simple_server import make_server

    from examples import settings

    application = setup()
    port = settings.port(PORT)
    with make_server("127.0.0.1", port, application) as server:
        print(f"Serving on http://127.0.0.1:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
