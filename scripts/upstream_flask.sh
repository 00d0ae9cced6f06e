#!/usr/bin/env bash
# Run Flask's own session tests with sessionware's Flask SessionInterface installed.
#
# Downloads the source distribution of the Flask version installed in the venv
# (or FLASK_VERSION), copies its tests/ directory and pytest settings, and runs
# tests/test_basic.py and tests/test_session_interface.py twice: as shipped
# (Flask's own SecureCookieSessionInterface, to prove the harness) and with a
# conftest.py dropped next to tests/ that installs `Sessionware(app,
# secret_key_base=..., store=CookieStore())` on every flask.Flask the suite
# creates (the `app` fixture and every Flask(...) a test builds itself). The
# test files themselves are not changed.
#
# Tests that cannot pass by design are listed, with the reason for each, in
# docs/flask.md; tests/test_flask_upstream.py pins that exact list.
#
# Usage: scripts/upstream_flask.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute: the runs cd away
version=${FLASK_VERSION:-$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("flask"))')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "flask==$version"
tar -xzf "$work"/flask-"$version".tar.gz -C "$work"
src="$work/flask-$version"

status=0
for variant in flask sessionware; do
    run="$work/run-$variant"
    mkdir -p "$run"
    cp "$src/pyproject.toml" "$run/"
    cp -r "$src/tests" "$run/tests"
    # Flask's tests/conftest.py uses `_pytest.monkeypatch.notset`, which newer pytest
    # spells `_pytest.compat.NOTSET`: the same sentinel, under its old name.
    cat > "$run/conftest.py" <<'EOF'
import _pytest.compat
import _pytest.monkeypatch

if not hasattr(_pytest.monkeypatch, "notset"):
    _pytest.monkeypatch.notset = _pytest.compat.NOTSET
EOF
    if [ "$variant" = sessionware ]; then
        cat >> "$run/conftest.py" <<'EOF'

# Put sessionware's SessionInterface on every Flask app the upstream suite creates.
import flask

from sessionware import CookieStore
from sessionware.flask import Sessionware

SECRET_KEY_BASE = "upstream-flask-suite-" + "0123456789abcdefghijklmnopqrstuvwxyz"
_flask_init = flask.Flask.__init__


def _init_with_sessionware(self, *args, **kwargs):
    _flask_init(self, *args, **kwargs)
    Sessionware(self, secret_key_base=SECRET_KEY_BASE, store=CookieStore())


flask.Flask.__init__ = _init_with_sessionware
EOF
    fi
    echo "== Flask $version tests/test_basic.py tests/test_session_interface.py with $variant's SessionInterface"
    # The venv's python, from the copy's directory, so Flask's pyproject.toml pytest settings apply.
    (cd "$run" && "$PYTHON" -m pytest -p no:cacheprovider -q -rf \
        tests/test_basic.py tests/test_session_interface.py "$@") || status=$?
done
exit $status
