# Bootstrap is stamp-based and idempotent: each step reruns only when its input changes
# (.venv when pyproject.toml does, node_modules when package-lock.json does).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.bootstrap-stamp
NODE_STAMP := node_modules/.bootstrap-stamp

.PHONY: up test test-postgres lint bootstrap clean distclean

## up: bootstrap, then run the local system (chain in the foreground; Ctrl-C stops it)
up: bootstrap
	$(BIN)/alliance up

## test: bootstrap, then run the whole test suite
test: bootstrap
	$(BIN)/pytest

## test-postgres: bootstrap, then run the database-backed suites (gateway, settlement) on
##   PostgreSQL (`scripts/with-postgres.sh make test-postgres` starts a throwaway server)
##   (ALLIANCE_TEST_DATABASE_URL names a server: postgresql+psycopg://USER@HOST:PORT/NAME;
##   each run creates and drops its own NAME_* databases there)
test-postgres: bootstrap
	@test -n "$$ALLIANCE_TEST_DATABASE_URL" || \
		{ echo "set ALLIANCE_TEST_DATABASE_URL to a PostgreSQL URL" >&2; exit 2; }
	$(BIN)/pytest tests/gateway tests/settlement

## lint: ruff and mypy
lint: $(VENV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bootstrap: Python venv, npm packages, and the solc adapter in py-solc-x's folder
bootstrap: $(VENV_STAMP) $(NODE_STAMP)
	$(BIN)/alliance toolchain install

$(VENV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# npm ci installs exactly package-lock.json (it recreates node_modules, stamp included).
# The lock lists all five @foundry-rs/anvil-<platform> packages even though our registry
# mirror serves only linux-amd64 (a lock regenerated here drops the others and `npm ci`
# then refuses it as out of sync); npm skips the other platforms without fetching them.
$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## clean: remove build outputs and tool caches (keeps .alliance/ chain data)
clean:
	rm -rf build .build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -not -path './.venv/*' -not -path './node_modules/*' \
		-type d -prune -exec rm -rf {} +

## distclean: clean, and remove the installed toolchains (.venv, node_modules)
distclean: clean
	rm -rf $(VENV) node_modules
