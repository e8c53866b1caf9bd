# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit install clean fingerprints

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m censornet.demo

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not lab"

test: lint typecheck
	$(BIN)/pytest -q

# Rebuild probe/fingerprints/data/fingerprints.json from OONI's blocking-fingerprints CSV files.
FINGERPRINT_CSVS ?= ../shared/ooni/fingerprints
fingerprints: $(STAMP)
	$(BIN)/python -m probe.fingerprints.make $(FINGERPRINT_CSVS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
