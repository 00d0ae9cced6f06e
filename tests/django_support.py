"""Django for the tests: configured once per process with the example project's settings.

The example's settings (``examples/django_app/settings.py``) are read with this
test run's own secret and a users' database in a temporary directory; tests
then pick the store with ``override_settings(SESSIONWARE=...)``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from .conftest import SECRET

_done = False


def setup() -> None:
    """Configure Django (once), create the tables and the example's user."""
    global _done
    if _done:
        return
    import django
    from django.core.management import call_command

    database = Path(tempfile.mkdtemp(prefix="sessionware-django-")) / "users.db"
    environment = {
        "DJANGO_SETTINGS_MODULE": "examples.django_app.settings",
        "SECRET_KEY_BASE": SECRET,
        "DJANGO_EXAMPLE_DB": str(database),
        "SESSION_STORE_URL": "memory:",
    }
    with mock.patch.dict(os.environ, environment):
        django.setup()  # the settings module is read here, with this environment
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    from examples.django_app.app import PASSWORD, USER

    User.objects.create_user(USER, password=PASSWORD)
    User.objects.create_user("bob", password="builder")
    _done = True


def django_logged_in(backend: str) -> str:
    """``django.contrib.auth.login`` of bob on a request whose session is Django's ``backend``; its key.

    The session also holds ``cart = ["apples"]``.
    """
    from django.contrib.auth import login
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = importlib.import_module(f"django.contrib.sessions.backends.{backend}").SessionStore()
    login(request, User.objects.get(username="bob"), backend="django.contrib.auth.backends.ModelBackend")
    request.session["cart"] = ["apples"]
    request.session.save()
    key = request.session.session_key
    assert key
    return key


@contextlib.contextmanager
def django_redis_cache(redis_url: str, prefix: str) -> Iterator[None]:
    """Django's own ``RedisCache`` on the test Redis, under ``prefix``."""
    from django.test import override_settings

    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }
    with override_settings(CACHES=caches):
        yield
