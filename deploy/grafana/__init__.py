"""Grafana dashboards as code: ``python -m deploy.grafana.generate`` writes dashboards/*.json."""
