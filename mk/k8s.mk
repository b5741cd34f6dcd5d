# Kubernetes (issue 6): the kustomize tree in deploy/k8s, proven offline.
# docs/kubernetes.md explains the objects and the deploy steps.

K8S_DIR := deploy/k8s
K8S_OUT := run/k8s
# checkov is heavy and pins its own dependencies: it lives in a venv of its own.
TOOLS_VENV := .venv-tools
CHECKOV := $(TOOLS_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: k8s-sync k8s-check k8s-render k8s-validate k8s-test k8s-scan k8s-tools

k8s-sync: ## regenerate the copies in deploy/k8s (nginx.conf, PrometheusRules, dashboards)
	$(PY) -m deploy.k8s.sync

k8s-check: ## fail when a generated copy in deploy/k8s is out of date
	$(PY) -m deploy.k8s.sync --check

k8s-render: ## render every overlay, with and without the components, into run/k8s
	rm -rf $(K8S_OUT)
	$(PY) -m deploy.k8s.build --out $(K8S_OUT)

k8s-validate: k8s-render ## kubernetes-validate --strict on every variant, for 1.30 and the newest schemas
	$(VENV)/bin/kubernetes-validate --strict --quiet -k 1.30.0 $(K8S_OUT)/*.yaml
	$(VENV)/bin/kubernetes-validate --strict --quiet --no-warn $(K8S_OUT)/*.yaml

k8s-test: ## the offline proof: render, validate against 1.30 and the newest schemas, consistency
	$(PY) -m pytest -q tests/deploy/test_k8s*.py

$(CHECKOV):
	python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)

k8s-tools: $(CHECKOV)

k8s-scan: $(CHECKOV) k8s-render ## policy scan of every rendered variant (accepted findings: deploy/k8s/checkov.yaml)
	$(CHECKOV) --config-file $(K8S_DIR)/checkov.yaml --directory $(K8S_OUT)
