# Two commands: `make serve` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= var
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: serve test test-lowest lint browser-deps screenshots clean

$(VENV)/.serve-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.serve-installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## Serve on http://$(HOST):$(PORT) with SQLite under ./$(DATA)
serve: $(VENV)/.serve-installed
	TILLIT_SERVER_DEVELOPMENT=true $(BIN)/tillit serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

## Run the whole test suite (installs Debian's Chromium and nginx for the browser tests)
test: $(VENV)/.test-installed browser-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	node --test tests/js/
	$(BIN)/pytest -q --durations=15

## The transport, store and chat tests at the oldest releases pyproject.toml allows
## (ci/lowest.txt), in a second virtualenv; no browser tests.
LOWEST := .venv-lowest
LOWEST_TESTS := tests/test_library_canary.py tests/test_transport.py tests/test_stores.py \
	tests/test_chat_flow.py tests/test_failover.py tests/test_hostile_input.py
test-lowest:
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install -q --upgrade pip
	$(LOWEST)/bin/pip install -q -c ci/lowest.txt -e . pytest pytest-asyncio hypothesis playwright
	$(LOWEST)/bin/pip list --format=freeze | grep -iE '^(aiohttp|python-(socket|engine)io|redis|bidict)=='
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

browser-deps:
	@scripts/install-browser-deps.sh

## Regenerate docs/screenshots in every shipped language (or LANGS="sv ar")
screenshots: $(VENV)/.test-installed browser-deps
	$(BIN)/python scripts/screenshots.py $(LANGS)

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .ruff_cache
