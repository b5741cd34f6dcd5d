"""Prometheus metrics: the exporter's HTTP series plus the service's own.

Under Gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts and every
worker writes its samples there; ``/metrics`` on a replica sums all of its workers.
Without it (tests, ``flask run``) the same series live in this process.

Every label has a small fixed set of values: model names, labels from the model's
label set, cache results. Input text and raw paths never become labels.
"""

from __future__ import annotations

import os

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from service.models.base import Model, Prediction

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNTRACKED_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$"]

# Model calls take from ~0.1 ms (one cached-size iris batch) to ~100 ms (a big text batch).
_INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class NullMetrics:
    """What inference, cache and batcher report; dropped when INFER_METRICS_ENABLED is false."""

    def loaded(self, models: list[Model]) -> None: ...

    def cache_lookup(self, model: str, result: str, tier: str, count: int) -> None: ...

    def cache_write_dropped(self, count: int) -> None: ...

    def batch(self, model: Model, size: int, seconds: float) -> None: ...

    def waited(self, model: Model, seconds: float) -> None: ...

    def rejected(self, model: Model) -> None: ...

    def answered(self, model: Model, predictions: list[Prediction]) -> None: ...


class Metrics(NullMetrics):
    """One app's metrics: bound in ``create_app``, fed by inference, cache and batcher."""

    def __init__(self, app: Flask):
        registry = CollectorRegistry()
        if MULTIPROC_ENV in os.environ:
            self.exporter = GunicornInternalPrometheusMetrics(
                app, registry=registry, group_by="endpoint", excluded_paths=UNTRACKED_PATHS)
        else:
            self.exporter = PrometheusMetrics(
                app, registry=registry, group_by="endpoint", excluded_paths=UNTRACKED_PATHS)
        self.inference_seconds = Histogram(
            "model_inference_seconds", "Seconds one model call (a batch) took",
            ["model"], buckets=_INFERENCE_BUCKETS, registry=registry)
        self.batch_size = Histogram(
            "model_batch_size", "Instances per model call", ["model"],
            buckets=_BATCH_BUCKETS, registry=registry)
        self.queue_wait = Histogram(
            "model_queue_wait_seconds", "Seconds a request waited for its batch to run",
            ["model"], buckets=_WAIT_BUCKETS, registry=registry)
        self.predictions = Counter(
            "model_predictions", "Predictions answered, by predicted label",
            ["model", "label"], registry=registry)
        self.model_info = Gauge(
            "model_info", "1 for every loaded model version", ["model", "version"],
            multiprocess_mode="livemax", registry=registry)
        self.cache_lookups = Counter(
            "cache_lookups",
            "Per-instance cache lookups by result (hit, miss, error) and tier (local, redis)",
            ["model", "result", "tier"], registry=registry)
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being served", multiprocess_mode="livesum",
            registry=registry)
        self.cache_writes_dropped = Counter(
            "cache_writes_dropped",
            "Answers not written to Redis because the worker's write queue was full",
            registry=registry)
        self.rejected_requests = Counter(
            "batch_rejected", "Requests shed with 503 because a batch queue was full",
            ["model"], registry=registry)
        app.before_request(self.in_flight.inc)
        app.teardown_request(lambda exc: self.in_flight.dec())

    def loaded(self, models: list[Model]) -> None:
        for model in models:
            self.model_info.labels(model.name, model.version).set(1)

    def cache_lookup(self, model: str, result: str, tier: str, count: int) -> None:
        if count:
            self.cache_lookups.labels(model, result, tier).inc(count)

    def cache_write_dropped(self, count: int) -> None:
        self.cache_writes_dropped.inc(count)

    def batch(self, model: Model, size: int, seconds: float) -> None:
        self.batch_size.labels(model.name).observe(size)
        self.inference_seconds.labels(model.name).observe(seconds)

    def waited(self, model: Model, seconds: float) -> None:
        self.queue_wait.labels(model.name).observe(seconds)

    def rejected(self, model: Model) -> None:
        self.rejected_requests.labels(model.name).inc()

    def answered(self, model: Model, predictions: list[Prediction]) -> None:
        counts: dict[str, int] = {}
        for prediction in predictions:
            counts[prediction.label] = counts.get(prediction.label, 0) + 1
        for label, count in counts.items():
            self.predictions.labels(model.name, label).inc(count)
