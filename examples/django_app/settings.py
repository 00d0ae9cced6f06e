"""Django settings of the example: Django's own session middleware and auth, with
``SESSION_ENGINE = "sessionware.django"``.

``SECRET_KEY_BASE`` (see ``examples/settings.py``) is the Django ``SECRET_KEY`` here, and so
the sessions' key. ``SESSION_STORE_URL`` picks the store (default: ``django-sessions.db``,
SQLite, in the working directory); ``DJANGO_EXAMPLE_DB`` the users' database (default
``django-users.db``).
"""

from __future__ import annotations

import os

from examples import settings as example

SECRET_KEY = example.secret_key_base()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]  # clearsessions
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "examples.django_app.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_EXAMPLE_DB", "django-users.db"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGIN_URL = "/"

SESSION_ENGINE = "sessionware.django"
SESSIONWARE = {
    "store": os.environ.get("SESSION_STORE_URL", "sqlite:///django-sessions.db"),
    "record_ip": True,  # shown in the "your sessions" list
}
