"""The per-request HTTP series on /metrics: the names, labels and buckets dashboards and
rules read (``flask_http_request_*``), recorded by service/metrics.py."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

import service.metrics

IRIS = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def samples(client, name: str) -> dict[tuple, float]:
    """``name``'s samples on /metrics, by their label values (sorted by label name)."""
    text = client.get("/metrics").get_data(as_text=True)
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def traffic(client):
    for _ in range(3):
        assert client.post("/v1/models/iris/predict", json=IRIS).status_code == 200
    assert client.post("/v1/models/iris/predict", json={"instances": [[1]]}).status_code == 422
    assert client.get("/v1/models").status_code == 200
    assert client.get("/nowhere").status_code == 404
    for probe in ("/healthz", "/readyz", "/metrics"):
        client.get(probe)


def test_requests_are_counted_by_method_and_status_and_probes_are_not(client):
    traffic(client)
    assert samples(client, "flask_http_request_total") == {
        (("method", "POST"), ("status", "200")): 3,
        (("method", "POST"), ("status", "422")): 1,
        (("method", "GET"), ("status", "200")): 1,
        (("method", "GET"), ("status", "404")): 1,
    }


def test_durations_are_observed_by_method_endpoint_and_status(client):
    traffic(client)
    counts = samples(client, "flask_http_request_duration_seconds_count")
    assert counts == {
        (("endpoint", "predict.predict_default"), ("method", "POST"), ("status", "200")): 3,
        (("endpoint", "predict.predict_default"), ("method", "POST"), ("status", "422")): 1,
        (("endpoint", "models.list_models"), ("method", "GET"), ("status", "200")): 1,
        (("endpoint", "None"), ("method", "GET"), ("status", "404")): 1,
    }
    sums = samples(client, "flask_http_request_duration_seconds_sum")
    assert all(0 < value < 10 for value in sums.values())
    buckets = samples(client, "flask_http_request_duration_seconds_bucket")
    assert {dict(labels)["le"] for labels in buckets} >= {"0.005", "0.1", "1.0", "+Inf"}


def test_in_flight_is_back_to_zero_after_the_requests(client):
    traffic(client)
    assert samples(client, "http_requests_in_flight") == {(): 1}  # the scrape itself


def test_series_beyond_the_kept_ones_are_still_counted(client, monkeypatch):
    monkeypatch.setattr(service.metrics, "_KEPT_SERIES", 1)
    traffic(client)
    totals = samples(client, "flask_http_request_total")
    assert sum(totals.values()) == 6
    assert sum(samples(client, "model_predictions_total").values()) == 3


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_an_unrouted_method_is_counted_with_its_status(client, method):
    assert client.open("/v1/models/iris/predict", method=method).status_code == 405
    assert samples(client, "flask_http_request_total") == {
        (("method", method), ("status", "405")): 1}


def test_shed_requests_and_dropped_cache_writes_reach_the_scrape(client):
    """Both go through the worker's buffer like every other update: they are counted
    inside a section lock, where nothing may touch the samples file (service/locks.py)."""
    state = client.application.extensions["infer"]
    state.metrics.rejected(state.registry.get("iris", None))
    state.metrics.cache_write_dropped(3)
    assert samples(client, "batch_rejected_total") == {(("model", "iris"),): 1}
    assert samples(client, "cache_writes_dropped_total") == {(): 3}
