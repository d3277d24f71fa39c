# Two commands from clone to running: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean bench

# package.json holds test-only tools from npm (axe-core, run inside Chromium by the browser tests).
$(STAMP): pyproject.toml $(wildcard package-lock.json)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	if [ -f package.json ]; then npm ci --no-audit --no-fund; fi
	touch $(STAMP)

install: $(STAMP)

## run: install, prepare the sample newsletter, send the sample issue to outbox/, keep serving
run: $(STAMP)
	$(BIN)/newsletter demo

## test: install what the tests need, then lint, type-check and run every test
test: $(STAMP) lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests bench scheduler.py
	$(BIN)/ruff format --check pipeline tests bench scheduler.py
	$(BIN)/mypy --strict pipeline

clean:
	rm -rf $(VENV) node_modules outbox newsletter.db newsletter.db-writers .pytest_cache .mypy_cache .ruff_cache

## bench: print the performance table (render, send vs. raw ceiling, import, memory)
bench: $(STAMP)
	$(BIN)/python bench/run.py
