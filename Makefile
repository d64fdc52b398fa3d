# Agent Mitra data platform. `make demo` and `make test` are all a new machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.md' \) -not -path 'dbt_project/target/*' -not -path 'dbt_project/logs/*')
ARGS ?=
PYTEST_ARGS ?=

export DO_NOT_TRACK := 1
export DBT_VERSION_CHECK := false
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: help install manifest demo test lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(INSTALLED)  ## create .venv and install the platform with pinned versions

$(MANIFEST): $(INSTALLED) $(DBT_SOURCES)
	$(BIN)/mitra dbt parse --quiet

manifest: $(MANIFEST)  ## parse the dbt project (the manifest Dagster loads)

demo: $(MANIFEST)  ## run everything end to end on the embedded PostgreSQL, then serve (ARGS=--no-serve to stop)
	$(BIN)/mitra demo $(ARGS)

test: $(MANIFEST)  ## install and run the test suite
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)  ## ruff and sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd dbt_project && ../$(BIN)/sqlfluff lint models macros

format: $(INSTALLED)  ## format Python code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(MANIFEST)  ## ratio benchmarks (bench/)
	$(BIN)/python -m bench

clean:  ## remove build output (keeps .venv and .mitra)
	rm -rf dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
