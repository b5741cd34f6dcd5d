# Monitoring (issue 7): Grafana dashboards as code, Prometheus recording and alert
# rules, their promtool unit tests, and the proof against a real Prometheus.
# docs/monitoring.md explains every panel and alert.

PROMTOOL ?= promtool
MONITORING_RULES := $(wildcard deploy/prometheus/rules/*.yml)
MONITORING_RULE_TESTS := $(wildcard deploy/prometheus/tests/*.test.yml)

.PHONY: dashboards monitoring-check test-monitoring test-monitoring-e2e

# Regenerate deploy/grafana/dashboards/*.json and the tables in docs/monitoring.md.
dashboards: setup
	$(PY) -m deploy.grafana.generate

# Rules valid, rule unit tests green, dashboards and doc tables current; no server.
monitoring-check: setup
	$(PROMTOOL) check rules $(MONITORING_RULES)
	$(PROMTOOL) test rules $(MONITORING_RULE_TESTS)
	$(PY) -m deploy.grafana.generate --check

test-monitoring: setup
	$(PY) -m pytest -q tests/deploy/test_monitoring_rules.py tests/deploy/test_monitoring_dashboards.py

# Starts the whole stack (tests/e2e/conftest.py) and queries Prometheus: ~1-2 minutes.
test-monitoring-e2e: setup
	$(PY) -m pytest -q tests/e2e/test_monitoring.py
