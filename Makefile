# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-serve test check lint typecheck unit browser bench soak clean

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

demo-serve: $(STAMP)
	$(BIN)/python -m gcdial.serve.web.demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

unit: $(STAMP)
	$(BIN)/pytest -q

# The page's browser tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

test: check browser unit

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(ARGS)

soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
