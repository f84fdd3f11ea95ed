# Every target sets up what it needs: `.venv` is created and filled on first use, and
# re-installed only when pyproject.toml changes (the stamp file).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration e2e chaos bench clean

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

bench: $(STAMP)
	$(BIN)/python -m streams.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
