# `make run`: install into .venv and mirror the example project (no accounts needed).
# `make test`: install with the test extras into .venv, lint, and run the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

run: $(BIN)/python
	$(BIN)/pip install --quiet .
	$(BIN)/syncd run -c config.example.yaml

test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info example-mirror
