# Stack helpers (issue 4). `make up` itself lives in the Makefile and runs
# `$(PY) -m deploy.stack up`; these targets check and render what it and compose use.

STACK_ENV := deploy/stack.env
COMPOSE := docker-compose --env-file $(STACK_ENV)

.PHONY: stack-render compose-render compose-config lint-docker stack-check

# Render run/ (NGINX, Prometheus, Redis, Procfile) without starting anything.
stack-render: setup
	$(PY) -m deploy.stack render

# Re-render deploy/nginx/compose.conf and deploy/prometheus/prometheus.compose.yml
# after changing docker-compose.yml's app services or a template.
compose-render: setup
	$(PY) -m deploy.stack render-compose

# Validate docker-compose.yml with docker-compose itself and the Compose Spec schema.
compose-config: setup
	$(COMPOSE) config -q
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

lint-docker: setup
	$(VENV)/bin/hadolint Dockerfile

# Everything about the stack that needs no running server.
stack-check: compose-config lint-docker
	$(PY) -m pytest -q tests/deploy/test_stack_config.py tests/deploy/test_compose.py
