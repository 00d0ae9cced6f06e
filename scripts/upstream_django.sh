#!/usr/bin/env bash
# Run Django's own session tests against sessionware.django, on SQLite, Redis and PostgreSQL.
#
# Downloads the source distribution of the Django version installed in the venv
# (or DJANGO_VERSION), copies its tests/sessions_tests package unchanged, and
# runs, with Django's test runner and SESSION_ENGINE = "sessionware.django":
#
#   - SessionTestsMixin (the contract every Django session backend passes) with
#     backend = sessionware.django.SessionStore;
#   - SessionMiddlewareTests (Django's own SessionMiddleware over the engine);
#
# each with and without USE_TZ, once per store. The runner's module (written
# below) only subclasses the upstream classes; two middleware tests name Django's
# database backend or model, and run with sessionware's in their place (the
# reasons are in docs/django.md, "Django's own tests"). No upstream test is
# skipped. tests/test_django_upstream.py pins the result.
#
# Needs the Redis and PostgreSQL of scripts/services.sh (SESSIONWARE_TEST_REDIS,
# SESSIONWARE_TEST_POSTGRES override their URLs).
#
# Usage: scripts/upstream_django.sh [sqlite|redis|postgres ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute: the runs cd away
version=${DJANGO_VERSION:-$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("django"))')}
stores=("$@")
[ ${#stores[@]} -gt 0 ] || stores=(sqlite redis postgres)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "django==$version"
tar -xzf "$work"/django-"$version".tar.gz -C "$work" "django-$version/tests/sessions_tests"
run="$work/run"
mkdir -p "$run"
cp -r "$work/django-$version/tests/sessions_tests" "$run/sessions_tests"

cat > "$run/sessionware_settings.py" <<'EOF'
import json
import os

SECRET_KEY = "upstream-django-suite-" + "0123456789abcdefghijklmnopqrstuvwxyz"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "sessions_tests",
]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
SESSION_ENGINE = "sessionware.django"
SESSIONWARE = {
    "store": os.environ["SESSIONWARE_UPSTREAM_STORE"],
    "store_options": json.loads(os.environ.get("SESSIONWARE_UPSTREAM_OPTIONS", "{}")),
}
EOF

cat > "$run/sessionware_upstream.py" <<'EOF'
"""Django's sessions_tests, against sessionware.django: subclasses only."""

from unittest import mock

from django.test import SimpleTestCase, override_settings

import sessions_tests.tests as upstream
from sessionware._django_config import current
from sessionware.django import SessionStore


def setUpModule():
    store = current().store
    if hasattr(store, "migrate"):  # PostgreSQL: this run's own table
        store.migrate()


class SessionwareSessionTests(upstream.SessionTestsMixin, SimpleTestCase):
    backend = SessionStore


@override_settings(USE_TZ=True)
class SessionwareSessionWithTimeZoneTests(SessionwareSessionTests):
    pass


class _StoredSessions:
    """Stands in for django.contrib.sessions.models.Session, which sessionware does not use:
    ``Session.objects.get(session_key=...).get_decoded()`` reads the record from the store."""

    class DoesNotExist(Exception):
        pass

    class objects:
        @staticmethod
        def get(session_key):
            if not SessionStore().exists(session_key):
                raise _StoredSessions.DoesNotExist(session_key)
            return mock.Mock(get_decoded=lambda: dict(SessionStore(session_key).load()))


class SessionwareMiddlewareTests(upstream.SessionMiddlewareTests):
    def test_session_update_error_redirect(self):
        # Upstream builds django.contrib.sessions' DatabaseSession here: sessionware's instead.
        with mock.patch.object(upstream, "DatabaseSession", SessionStore):
            super().test_session_update_error_redirect()

    def test_empty_session_saved(self):
        # Upstream reads the record through Django's Session model: from sessionware's store instead.
        with mock.patch.object(upstream, "Session", _StoredSessions):
            super().test_empty_session_saved()


@override_settings(USE_TZ=True)
class SessionwareMiddlewareWithTimeZoneTests(SessionwareMiddlewareTests):
    pass
EOF

redis=${SESSIONWARE_TEST_REDIS:-redis://127.0.0.1:6379/0}
postgres=${SESSIONWARE_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}
table="sessionware_django_upstream_$$"
cleanup_postgres() {
    "$PYTHON" - "$postgres" "$table" <<'EOF' || true
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as connection:
    connection.execute(f"DROP TABLE IF EXISTS {sys.argv[2]}")
EOF
}

cleanup_redis() {
    "$PYTHON" - "$redis" "sw-django-upstream-$$:" <<'EOF' || true
import sys

import redis

client = redis.Redis.from_url(sys.argv[1])
keys = list(client.scan_iter(match=sys.argv[2] + "*", count=1000))
if keys:
    client.delete(*keys)
client.close()
EOF
}

status=0
for store in "${stores[@]}"; do
    case "$store" in
        sqlite) url="sqlite:///$run/sessions.db"; options="{}" ;;
        redis) url="$redis"; options="{\"prefix\": \"sw-django-upstream-$$:\"}" ;;
        postgres) url="$postgres"; options="{\"table\": \"$table\"}" ;;
        *) echo "unknown store $store (sqlite, redis or postgres)" >&2; exit 2 ;;
    esac
    echo "== Django $version sessions_tests against sessionware.django on $store"
    (cd "$run" && SESSIONWARE_UPSTREAM_STORE="$url" SESSIONWARE_UPSTREAM_OPTIONS="$options" \
        "$PYTHON" -W error -m django test sessionware_upstream --settings=sessionware_settings -v 2 2>&1) \
        || status=$?
    [ "$store" != postgres ] || cleanup_postgres
    [ "$store" != redis ] || cleanup_redis
done
exit $status

