# The platform's commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_ARGS ?=

$(STAMP): requirements/platform.txt requirements/torch.txt requirements/dev.txt fsdl_lib/pyproject.toml webapp/pyproject.toml deploy/pyproject.toml tools/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -r requirements/platform.txt -r requirements/dev.txt -e fsdl_lib -e webapp -e deploy -e tools
	$(BIN)/python -m pip check
	@touch $@

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: venv
venv: $(STAMP) ## Create .venv with every pinned dependency (about 7 GB, a few minutes)

.PHONY: up
up: venv ## Run the platform locally (Airflow, MLflow, web app) on SQLite; Ctrl-C (or SIGTERM, SIGHUP) stops it
	@scripts/up.sh

.PHONY: up-distributed
up-distributed: venv ## Run the same topology as docker compose as processes: Postgres, Redis, Celery, Flower
	@FSDL_MODE=distributed scripts/up.sh

.PHONY: down
down: ## Stop a platform of this checkout left running (make up, up-distributed or demo), and only that
	@$(BIN)/python -m fsdl_tools.processes down

.PHONY: status
status: ## Say which platforms of this checkout run, where, and their processes
	@$(BIN)/python -m fsdl_tools.processes status

.PHONY: secrets
secrets: ## Add the secrets docker compose needs to .env (creating it from .env.example)
	@test -f .env || cp .env.example .env
	@PYTHONPATH=deploy/src $(PYTHON) -m fsdl_deploy.secrets .env --compose

.PHONY: worker-env
worker-env: ## Write worker.env for a worker host: make worker-env ADDRESS=<this host's IP> NAME=<its name>
	@test -n "$(ADDRESS)" || { echo "usage: make worker-env ADDRESS=<this host's IP, as the worker host reaches it> NAME=<worker name>"; exit 2; }
	@PYTHONPATH=deploy/src $(PYTHON) -m fsdl_deploy.workers .env worker.env --address "$(ADDRESS)" --hostname "$(or $(NAME),fsdl-worker-2)"

.PHONY: demo
demo: venv ## One full turn of the data flywheel on the offline sample (own workspace in .demo/), then keep running
	@$(BIN)/python scripts/demo.py --keep $(DEMO_ARGS)

.PHONY: seed
seed: venv ## Seed data/raw/intel_scenes from the sample photos if it holds no images
	@$(BIN)/fsdl seed --sample samples/intel_scenes --wine data/raw/wine/winequality-red.csv

.PHONY: generate
generate: venv ## Write the files generated from deploy/ (compose environments, Procfiles, prometheus.yml, .env.example)
	$(BIN)/python -m fsdl_deploy.generate

.PHONY: test
test: venv ## Run every test layer (skips count as failures; installs what the layers need where it can)
	@scripts/test-prerequisites.sh
	@scripts/docker-engine.sh ensure
	@$(BIN)/python -m fsdl_tools.compose base-images
	$(BIN)/ruff check .
	FSDL_NO_SKIPS=1 $(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-compose-live
test-compose-live: venv ## Build the images and run docker-compose.yml for real, flywheel and faults (Docker engine)
	@scripts/test-prerequisites.sh
	@scripts/docker-engine.sh ensure
	@$(BIN)/python -m fsdl_tools.compose base-images
	FSDL_NO_SKIPS=1 $(BIN)/pytest tests/compose_live $(PYTEST_ARGS)

.PHONY: test-lib
test-lib: venv ## Run the fast library tests only
	$(BIN)/pytest -m "lib and not slow" $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## Check style with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: venv ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: clean
clean: ## Remove caches and derived data (keeps raw data, the venv and MLflow/Airflow state)
	rm -rf .pytest_cache .ruff_cache data/processed/*
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
	touch data/processed/.gitkeep
