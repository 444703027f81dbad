# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck unit doctest bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/gcdial demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

unit: $(STAMP)
	$(BIN)/pytest -q

# The examples of README.md and docs/ (part of `unit` too: `make test` runs them).
doctest: $(STAMP)
	$(BIN)/pytest -q tests/docs

test: check unit

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(ARGS)

soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
