"""Grafana dashboards as code: the committed JSON is what the generator makes, every
query names metrics that exist, and compose provisioning finds the files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from deploy.grafana import generate
from deploy.procs import ROOT

DASHBOARDS = sorted(generate.DASHBOARDS_DIR.glob("*.json"))
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"

# docs/architecture.md's metrics, the NGINX exporter's (prometheus-nginx-exporter
# 0.11) and Prometheus' own `up`.
APP_HISTOGRAMS = {
    "flask_http_request_duration_seconds",
    "model_inference_seconds",
    "model_batch_size",
    "model_queue_wait_seconds",
}
KNOWN_METRICS = {
    f"{name}_{suffix}" for name in APP_HISTOGRAMS for suffix in ("bucket", "sum", "count")
} | {
    "flask_http_request_total",
    "flask_http_request_exceptions_total",
    "model_predictions_total",
    "model_info",
    "cache_lookups_total",
    "cache_writes_dropped_total",
    "http_requests_in_flight",
    "batch_rejected_total",
    "up",
    "nginx_up",
    "nginx_http_requests_total",
    *(
        f"nginx_connections_{s}"
        for s in ("accepted", "handled", "active", "reading", "writing", "waiting")
    ),
}
# A name directly followed by a selector or a range, or a recording-rule name (has ':').
METRIC_REFERENCE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{|\b([a-z_]+:[a-z0-9_:]+)")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in RULES_DIR.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def test_committed_dashboards_and_doc_tables_are_what_the_generator_makes():
    assert generate.stale_files() == [], "run `make dashboards` and commit the result"
    generated = {p.name for p in generate.rendered_files() if p.suffix == ".json"}
    assert {p.name for p in DASHBOARDS} == generated


def test_generator_check_mode_fails_on_a_stale_file(tmp_path, monkeypatch):
    doc = tmp_path / "monitoring.md"
    doc.write_text(MONITORING_DOC.read_text().replace("| panel |", "| stale panel |", 1))
    monkeypatch.setattr(generate, "DASHBOARDS_DIR", tmp_path / "dashboards")
    monkeypatch.setattr(generate, "MONITORING_DOC", doc)
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_offers_datasource_replica_and_model_variables(path):
    variables = {v["name"]: v for v in load(path)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "instance" in variables["replica"]["definition"]
    assert "model" in variables["model"]["definition"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_queries_through_the_datasource_variable(path):
    for panel in load(path)["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_names_only_metrics_that_exist(path):
    known = KNOWN_METRICS | recorded_names()
    for expr in queries(load(path)):
        names = {a or b for a, b in METRIC_REFERENCE.findall(expr)}
        assert names, f"no metric found in {expr}"
        assert names <= known, f"unknown {names - known} in {expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_do_not_overlap_on_the_grid(path):
    cells: set[tuple[int, int]] = set()
    for panel in load(path)["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_overview_covers_every_panel_the_issue_asks_for():
    titles = {p["title"] for p in load(generate.DASHBOARDS_DIR / "infer-overview.json")["panels"]}
    for wanted in (
        "Request rate by route and status",
        "Error ratio (5xx and 4xx)",
        "Request latency p50, p95, p99",
        "Inference latency per model",
        "Batch size per model",
        "Cache hit ratio per model",
        "Cache errors and dropped writes",
        "Requests in flight per replica",
        "Replicas up",
        "Traffic balance across replicas",
        "Predicted label mix (1h share, all replicas)",
        "NGINX connections",
    ):
        assert wanted in titles


def test_compose_provisioning_loads_the_dashboards_from_the_documented_mount():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "infer.yml").read_text())
    (only,) = provider["providers"]
    assert only["type"] == "file"
    mount = only["options"]["path"]
    doc = MONITORING_DOC.read_text()
    assert mount in doc and "/etc/grafana/provisioning" in doc


def test_compose_datasource_is_the_compose_prometheus_at_the_scrape_interval():
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["jsonData"]["timeInterval"] == "${INFER_SCRAPE_INTERVAL}"


def test_docker_compose_mounts_grafana_provisioning_and_dashboards_where_they_are_read():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = {
        source.removeprefix("./"): target
        for source, target, *_ in (v.split(":") for v in compose["services"]["grafana"]["volumes"])
    }
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "infer.yml").read_text())
    assert volumes["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert volumes["deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
