# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-serve screenshots test check lint typecheck unit doctest browser bench soak clean postgres-binaries official-models node js-deps js-client

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

# The README's pictures of the page (docs/page.png, docs/page-phone.png), from the demo.
screenshots: $(STAMP) browser
	$(BIN)/python -m gcdial.serve.web.demo --port 0 --screenshots docs

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

# Two workers, a test file each at a time: most tests wait on servers and subprocesses, so two
# cores run the suite in about 11 minutes (a fresh clone, 2026-12-07). `pytest`
# alone runs the tests one at a time.
unit: $(STAMP) postgres-binaries js-deps
	$(BIN)/pytest -q -n 2 --dist loadfile

# The page's browser tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# The PostgreSQL tests start a throwaway cluster (tests/pgcluster.py) from the machine's server
# binaries; where there are none, install Debian's package (CI runs as root).
postgres-binaries:
	@if [ -n "$$GCDIAL_PG_BINDIR" ] || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
	    || command -v pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "no PostgreSQL server binaries: installing Debian's postgresql package"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	else \
	    echo "no PostgreSQL server binaries: run 'sudo apt-get install -y postgresql'" \
	        "(or set GCDIAL_PG_BINDIR to the directory holding initdb, pg_ctl and postgres)" >&2; \
	    exit 1; \
	fi

# The JavaScript client (clients/js) and its Node example run in `make test`: Node from the machine,
# else Debian's nodejs and npm (CI runs as root).
node:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "no Node.js: installing Debian's nodejs and npm packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	else \
	    echo "no Node.js: run 'sudo apt-get install -y nodejs npm' (Node 18 or later)" >&2; \
	    exit 1; \
	fi

# The client's npm packages, at the versions package.json allows (no lock file is kept).
JS := clients/js
$(JS)/node_modules/.installed: $(JS)/package.json | node
	cd $(JS) && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

js-deps: $(JS)/node_modules/.installed

# Regenerate the typed client: the OpenAPI document from the app (no server), then its types.
js-client: $(STAMP) js-deps
	$(BIN)/python -m gcdial.serve.openapi_doc > $(JS)/openapi.json.tmp
	mv $(JS)/openapi.json.tmp $(JS)/openapi.json
	cd $(JS) && npx --no-install openapi-typescript openapi.json --output schema.d.ts
	cd $(JS) && npx --no-install tsc --project tsconfig.json

# The examples of README.md and docs/ (part of `unit` too: `make test` runs them).
doctest: $(STAMP) js-deps
	$(BIN)/pytest -q tests/docs

test: check browser unit

bench: $(VENV)/.bench-installed postgres-binaries
	$(BIN)/python -m bench $(ARGS)

# The emulator's routes held to the official SDK: regenerate tests/emulator/official_models.json.
official-models: $(VENV)/.bench-installed
	$(BIN)/python tests/emulator/gen_official_models.py

soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
