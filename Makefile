# The README's commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Benchmarks read ATIS, SNIPS and the sentiment sets from here (never copied into the repo).
BENCH_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: run test install lint typecheck pytest migrate demo-models bench stress clean

# setup.py compiles models/_native.c (the engine's kernels) in place: a changed kernel reinstalls.
$(BIN)/slotfill: pyproject.toml setup.py models/_native.c
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/slotfill

install: $(BIN)/slotfill

migrate: install
	$(BIN)/alembic upgrade head

demo-models: install
	$(BIN)/slotfill bootstrap

run: migrate demo-models
	@echo "Operator console: http://127.0.0.1:8000/console; create the first admin with"
	@echo "  $(BIN)/slotfill user add NAME --role admin"
	$(BIN)/slotfill serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Test files spread over PYTEST_WORKERS processes (pytest-xdist); PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
pytest: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck pytest
	cd $(CURDIR) && SLOTFILL_DATABASE_URL=sqlite:///$(CURDIR)/build/alembic-check.db sh -c 'mkdir -p build && rm -f build/alembic-check.db && $(BIN)/alembic upgrade head && $(BIN)/alembic check'

# The peers it compares with (sklearn-crfsuite, spaCy) come with the bench extra.
bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	SLOTFILL_DATA_DIR=$(BENCH_DATA_DIR) $(BIN)/python -m benchmarks.run_all

# Every reliability test, the full sizes (marker stress) included; prints the figures table.
stress: install
	$(BIN)/pytest -q -m 'stress or not stress' tests/reliability

clean:
	rm -rf $(VENV) build model_store slotfill.db
