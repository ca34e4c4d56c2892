# Two commands: `make serve` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= var
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: serve test lint browser-deps screenshots clean

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
	$(BIN)/pytest -q

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

browser-deps:
	@scripts/install-browser-deps.sh

## Regenerate docs/screenshots in every shipped language (or LANGS="sv ar")
screenshots: $(VENV)/.test-installed browser-deps
	$(BIN)/python scripts/screenshots.py $(LANGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
