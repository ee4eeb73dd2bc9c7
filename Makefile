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
# --dist worksteal: an idle worker takes tests queued on a busy one (with the default
# `load`, tests stay queued behind a long one while other workers sit idle for minutes).
TEST_WORKERS ?= 4

test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info example-mirror .mypy_cache .import_linter_cache
