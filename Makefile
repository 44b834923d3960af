# creditline: two commands on a fresh machine.
#   make run   set up .venv from the lock file, seed a champion model on a first start,
#              migrate the embedded database, serve HTTP
#   make test  set up .venv, then format check, lint, types, import contracts and tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2

.PHONY: run test check fmt lint types imports pytest venv clean

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --all-extras --inexact --python $(BIN)/python
	@rm -f $(VENV)/.synced-* && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/creditline demo seed
	$(BIN)/creditline serve

test: check

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
