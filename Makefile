# `make run`: install into .venv and mirror the example project (no accounts needed).
# `make test`: install with the test extras into .venv, lint, type-check, check the import
# direction and the declared dependencies, and run the test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

run: $(BIN)/python
	$(BIN)/pip install --quiet .
	$(BIN)/syncd run -c config.example.yaml

lint: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/deptry .

# Four workers on two cores: the end-to-end tests mostly wait (quiet windows, the fake
# services' pacing), so they overlap well; TEST_WORKERS=0 runs them in one process.
# --maxschedchunk 1: a worker is handed its next test only when it is nearly free, so
# no test waits queued behind a long one while other workers sit idle (with the default
# chunks, three workers idled ~100 s at the end of a run; `--dist worksteal` was slower
# still here: it steals by count of queued tests, not by their length).  bench/README.md.
TEST_WORKERS ?= 4

test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --maxschedchunk 1

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info example-mirror .mypy_cache .import_linter_cache
