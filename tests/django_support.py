"""Django for the tests: configured once per process with the example project's settings.

The example's settings (``examples/django_app/settings.py``) are read with this
test run's own secret and a users' database in a temporary directory; tests
then pick the store with ``override_settings(SESSIONWARE=...)``.
"""

from __future__ import annotations

import os
import tempfile
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
