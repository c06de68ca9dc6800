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
	@$(MAKE) -s --no-print-directory $(OIDC_PEER)/node_modules/.installed $(OIDC_RP_PEER)/node_modules/.installed

# A stamp per npm peer: a second `make test` (CI runs two) skips `npm ci`; a new lock file reinstalls.
%/node_modules/.installed: %/package-lock.json
	npm ci --prefix $* --silent --no-audit --no-fund
	@touch $@

demo: install
	$(BIN)/vestibule demo --port $(PORT)

serve: install
	$(BIN)/vestibule serve --port $(PORT)

# `make test` runs the suite in two pytest invocations (tests/suites.py draws the line):
#  1. database: the database suite, spread over the CPU cores by pytest-xdist (TEST_WORKERS=auto;
#     each worker has its own test database, test_<name>_gw0, _gw1...; TEST_WORKERS=0: no workers);
#  2. servers: the suites that start servers (markers interop, multiprocess, browser, load), one
#     test at a time: they bind ports, share Redis db 15 and bound their waits and throughput in seconds.
# TEST_SUITES=database runs only the first. PYTEST_ARGS goes to both: `make test PYTEST_ARGS='-m browser'`
# runs only the browser tests, PYTEST_ARGS=tests/saml one folder. An invocation left with nothing
# to run is not an error as long as another ran something; the first failure's exit status is make's.
TEST_WORKERS ?= auto
TEST_SUITES ?= database servers
test: install-test peers
	@ran=0; failed=0; \
	for suite in $(TEST_SUITES); do \
	  case $$suite in \
	    database) opts="-n $(TEST_WORKERS)"; how="in parallel (pytest-xdist -n $(TEST_WORKERS))" ;; \
	    servers) opts=""; how="one test at a time" ;; \
	    *) echo "make test: TEST_SUITES takes database and servers, not $$suite" >&2; exit 2 ;; \
	  esac; \
	  echo "== make test: the $$suite suite, $$how"; \
	  status=0; $(BIN)/python -m pytest --suite=$$suite $$opts $(PYTEST_ARGS) || status=$$?; \
	  case $$status in 0) ran=1 ;; 5) ;; *) [ $$failed != 0 ] || failed=$$status ;; esac; \
	done; \
	[ $$failed = 0 ] || exit $$failed; \
	[ $$ran = 1 ] || { echo "make test: no test selected" >&2; exit 5; }

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
