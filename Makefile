# The two commands a new user needs: `make up` (the stack) and `make test` (every test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
MODELS_DIR ?= models
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

# `make up REPLICAS=3`, `make up REDIS_URL=redis://host:6379/0`
REPLICAS ?=
REDIS_URL ?=

.PHONY: help setup models train test up lint clean

help:
	@echo "make up      bring the whole stack up (installs and trains what is missing)"
	@echo "make test    run every test (unit, integration, e2e, deploy)"
	@echo "make setup   system packages + virtual environment"
	@echo "make train   (re)train the models into $(MODELS_DIR)/"
	@echo "make lint    ruff"
	@echo "more: make loadtest | loadtest-distributed | bench | k8s-scan | dashboards (mk/*.mk)"
	@echo "make clean   remove the venv, models and run state"

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	@touch $@

models: setup
	$(PY) -m service.train --if-missing --models-dir $(MODELS_DIR)

train: setup
	$(PY) -m service.train --models-dir $(MODELS_DIR)

# Every test, then the Kubernetes policy scan (checkov in its own venv, mk/k8s.mk).
test: setup models
	INFER_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory k8s-scan

up: setup models
	INFER_MODELS_DIR=$(abspath $(MODELS_DIR)) $(if $(REPLICAS),INFER_REPLICAS=$(REPLICAS)) \
	$(if $(REDIS_URL),REDIS_URL=$(REDIS_URL)) $(PY) -m deploy.stack up

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(MODELS_DIR) run reports .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

-include mk/*.mk
