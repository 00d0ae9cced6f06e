# Two commands matter: `make demo` serves the demo app, `make test` runs every check.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# `make demo` installs only what the demo needs (sessionware, Starlette, uvicorn): its own stamp.
DEMO_STAMP := $(VENV)/.installed-demo
PORT ?= 8000

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m uvicorn --factory examples.demo.app:create_app --host 127.0.0.1 --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	scripts/services.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	scripts/services.sh
	$(BIN)/python -m pytest

# Every benchmark, each writing its own section of docs/benchmarks.md (about 40 minutes).
bench: $(STAMP)
	scripts/services.sh
	$(BIN)/python bench/bench_asgi.py --write docs/benchmarks.md
	$(BIN)/python bench/bench_stores.py --write docs/benchmarks.md
	$(BIN)/python bench/bench_wsgi.py --write docs/benchmarks.md
	$(BIN)/python bench/bench_django.py --write docs/benchmarks.md
	$(BIN)/python bench/bench_http.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
