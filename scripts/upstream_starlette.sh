#!/usr/bin/env bash
# Run Starlette's own session tests against sessionware.starlette.SessionMiddleware.
#
# Downloads the source distribution of the Starlette version installed in the
# venv, takes tests/middleware/test_session.py with the fixtures it needs
# (tests/conftest.py, tests/types.py) and Starlette's pytest settings, and runs
# it twice: as shipped (against Starlette's own middleware, to prove the
# harness) and with its one import line changed to sessionware's.
#
# Usage: scripts/upstream_starlette.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute: the runs cd away
version=$("$PYTHON" -c 'import starlette; print(starlette.__version__)')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "starlette==$version"
tar -xzf "$work"/starlette-"$version".tar.gz -C "$work"
src="$work/starlette-$version"

original='from starlette.middleware.sessions import Session, SessionMiddleware'
replacement='from sessionware.starlette import Session, SessionMiddleware'
status=0
for variant in starlette sessionware; do
    run="$work/run-$variant"
    mkdir -p "$run/tests/middleware"
    cp "$src/pyproject.toml" "$run/"
    cp "$src/tests/__init__.py" "$src/tests/conftest.py" "$src/tests/types.py" "$run/tests/"
    touch "$run/tests/middleware/__init__.py"
    cp "$src/tests/middleware/test_session.py" "$run/tests/middleware/"
    if [ "$variant" = sessionware ]; then
        sed -i "s/^$original\$/$replacement/" "$run/tests/middleware/test_session.py"
        changed=$(diff "$src/tests/middleware/test_session.py" "$run/tests/middleware/test_session.py" | grep -c '^>' || true)
        if [ "$changed" != 1 ]; then
            echo "upstream_starlette: expected to change exactly one import line, changed $changed" >&2
            exit 1
        fi
    fi
    echo "== Starlette $version tests/middleware/test_session.py against $variant's SessionMiddleware"
    # The venv's python, from the copy's directory: `tests` is the upstream package.
    (cd "$run" && "$PYTHON" -m pytest -p no:cacheprovider -q tests/middleware/test_session.py "$@") || status=$?
done
exit $status
