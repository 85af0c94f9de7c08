# guardbot developer tasks (GNU make).
#
#   make setup   create .venv and install guardbot with its dev tools and every extra
#   make test    run the test suite (PYTEST_ARGS="-k foo -x" to pass options)
#   make lint    ruff check, ruff format --check, mypy
#   make format  reformat and autofix with ruff
#   make run     run the daemon on config/demo.toml (offline demo; Ctrl-C stops it); installs
#                only what running needs (guardbot and its embedded broker), no dev tools
#   make demo    replay the demo scenario with `guardbot simulate`
#   make bench   run the engine throughput benchmark
#   make clean   remove the venv, caches and build artefacts

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is installed: RUN_STAMP guardbot with the embedded broker (make run, make demo);
# DEV_STAMP also the report and notify extras and the developer tools (make test, make lint).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

LINT_PATHS := $(wildcard guardbot tests bench)

.DEFAULT_GOAL := help

.PHONY: help setup test lint format run demo bench clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# The venv is created once; each stamp is redone only when pyproject.toml changes, so repeated
# `make test` / `make run` do not reinstall anything.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "guardbot needs Python >= 3.11 (PYTHON=$(PYTHON) is $$($(PYTHON) --version 2>&1))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[broker]'
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[broker,report,notify,dev]'
	@touch $@ $(RUN_STAMP)

setup: $(DEV_STAMP)

test: $(DEV_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy guardbot

format: $(DEV_STAMP)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

run: $(RUN_STAMP)
	$(BIN)/guardbot run -c config/demo.toml

demo: $(RUN_STAMP)
	$(BIN)/guardbot simulate --pretty examples/scenarios/demo.jsonl

bench: $(DEV_STAMP)
	$(BIN)/python bench/engine_throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info guardbot.egg-info
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
