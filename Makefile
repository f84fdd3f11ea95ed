# Every target sets up what it needs: `.venv` is created and filled on first use, and
# re-installed only when pyproject.toml changes (the stamp file).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration e2e bench soak clean

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

test: lint
	$(BIN)/python -m pytest -m "unit or integration or e2e" $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m streams.bench

# The live pipeline (engage demo) for SOAK_MINUTES: RSS, CPU and lag over time, and whether memory
# levelled off (streams/bench/soak.py); not part of `make test`.
SOAK_MINUTES ?= 40
soak: $(STAMP)
	$(BIN)/python -m streams.bench.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
