# Two commands matter: `make course` and `make test`. Both set up .venv first when it is
# missing or older than pyproject.toml; when nothing changed, set-up is a no-op.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= $(or $(TRYON_LAB_PROFILE),quick)
PYTEST_ARGS ?=
# one test worker per core of the 2-core CI machine; tests that share costly fixtures stay on one worker
PYTEST_WORKERS ?= 2

.PHONY: setup course lab test benchmarks clean

setup: $(STAMP)

# torch first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

course: $(STAMP)
	$(BIN)/tryon-lab course --profile $(PROFILE) --out build/course

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks all

clean:
	rm -rf build .pytest_cache
