# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= parlant.yaml
# Test processes (pytest-xdist): a file's tests stay in one process. 0: one process only.
TEST_WORKERS ?= 2

.PHONY: run test lint bench schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install when pyproject.toml or the constraints change.
$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[emulator]'
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[emulator,dev]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/parlant-router run -c $(CONFIG)

test: $(VENV)/.dev-installed
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

schema: $(VENV)/.dev-installed
	$(BIN)/parlant-router schema > schemas/parlant.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
