# Two entry points for a fresh clone:
#   make demo   set up a virtualenv and run Vestibule with demo data (SQLite, no other server)
#   make test   install test dependencies and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
OIDC_PEER := tests/interop/oidc_provider
OIDC_RP_PEER := tests/interop/openid_client

.PHONY: demo serve test install install-test peers lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps make a second `make test` skip reinstalling; editing pyproject.toml reinstalls.
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

# Third-party peers the tests start: pysaml2's IdP needs the xmlsec1 program; the
# browser tests drive Debian's Chromium (Playwright never downloads a browser here);
# the load and fault tests put HAProxy in front of two server nodes;
# the OpenID Provider and openid-client (the relying party that tests Vestibule's
# own provider) are npm packages.
peers:
	@command -v xmlsec1 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq xmlsec1 >/dev/null); \
	  else echo "note: install xmlsec1 (apt-get install xmlsec1) for the pysaml2 interop tests"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium >/dev/null); \
	  else echo "note: install chromium (apt-get install chromium) for the browser tests"; fi; }
	@command -v haproxy >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq haproxy >/dev/null); \
	  else echo "note: install haproxy (apt-get install haproxy) for the load and fault tests"; fi; }
	@if [ -f $(OIDC_PEER)/package-lock.json ]; then npm ci --prefix $(OIDC_PEER) --silent --no-audit --no-fund; fi
	@if [ -f $(OIDC_RP_PEER)/package-lock.json ]; then npm ci --prefix $(OIDC_RP_PEER) --silent --no-audit --no-fund; fi

demo: install
	$(BIN)/vestibule demo --port $(PORT)

serve: install
	$(BIN)/vestibule serve --port $(PORT)

test: install-test peers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Quality gates .ci/run runs before the tests; the settings are in pyproject.toml.
lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install-test
	$(BIN)/mypy

bench: install-test
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache
