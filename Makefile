# Two commands for a newcomer:  `make demo` (the main job) and `make test` (lint + the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit integration venv bench clean screenshot

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sluice demo

lint: $(STAMP)
	$(BIN)/ruff check shared workers tests benchmarks deploy tools
	$(BIN)/ruff format --check shared workers tests benchmarks deploy tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_imports.py

test: lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

# The dashboard under load, photographed by Debian's chromium (apt-get install chromium).
screenshot: $(STAMP)
	$(BIN)/python tools/dashboard_screenshot.py --out docs/dashboard.png

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
