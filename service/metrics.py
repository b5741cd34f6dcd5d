"""Prometheus metrics: per-request HTTP series plus the service's own.

Under Gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts and every
worker writes its samples there; ``/metrics`` on a replica sums all of its workers.
Without it (tests, ``flask run``) the same series live in this process. Either way a
worker's updates are gathered and written in bulk, at most ``_MAX_PENDING_SECONDS``
late and before the worker serves a scrape (``service/metrics_buffer.py``).

Every label has a small fixed set of values: model names, labels from the model's
label set, cache results. Input text and raw paths never become labels.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from service.metrics_buffer import MetricBuffer
from service.models.base import Model, Prediction
from service.paths import METRICS_PATH, OPERATIONAL_PATHS

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Series looked up by label values once and then kept (``labels()`` takes a lock and
# checks its arguments: 1.2 us a call in a tight loop under gevent; a cached prediction
# made five such calls). Enough for every route, status, model, label and cache result
# this app has; odd methods beyond it are still counted.
_KEPT_SERIES = 512

# How late a worker's updates may reach its samples file (service/metrics_buffer.py).
_MAX_PENDING_SECONDS = 1.0

# Model calls take from ~0.1 ms (one cached-size iris batch) to ~100 ms (a big text batch).
_INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class NullMetrics:
    """What inference, cache and batcher report; dropped when INFER_METRICS_ENABLED is false."""

    def loaded(self, models: list[Model]) -> None: ...

    def flush(self) -> None: ...

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
        # The exporter serves /metrics (summing the workers' files under Gunicorn). The
        # per-request series it would record are recorded below instead, under its names
        # and labels: its hooks cost ~35 us of a cached prediction's ~290 us in one
        # worker (a regex per excluded path, labels looked up by keyword, markers set on
        # the request).
        exporter = (GunicornInternalPrometheusMetrics if MULTIPROC_ENV in os.environ
                    else PrometheusMetrics)
        self.exporter = exporter(app, path=METRICS_PATH, registry=registry,
                                 export_defaults=False)
        self.request_seconds = Histogram(
            "flask_http_request_duration_seconds",
            "Seconds from a request's first hook to its response",
            ["method", "endpoint", "status"], registry=registry)
        self.requests = Counter(
            "flask_http_request_total", "HTTP requests answered", ["method", "status"],
            registry=registry)
        self.request_exceptions = Counter(
            "flask_http_request_exceptions_total",
            "HTTP requests that ended in an exception no error handler took",
            ["method", "status"], registry=registry)
        self._kept: dict[tuple, Any] = {}  # (metric, label values) -> its series
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
        # Updates are gathered and written in bulk, at most a second late, and before this
        # worker serves a scrape (service/metrics_buffer.py).
        self._buffer = MetricBuffer(max_age_seconds=_MAX_PENDING_SECONDS)
        self._buffer.start_flusher()
        _flush_before(app, METRICS_PATH, self._buffer)
        # registered first (create_app): the gauge and the clock see every later hook
        app.before_request(self._request_started)
        app.after_request(self._request_answered)
        app.teardown_request(self._request_ended)

    def _request_started(self) -> None:
        ctx = g._get_current_object()  # one proxy lookup
        ctx.metrics_started = time.perf_counter()
        self._buffer.inc(self.in_flight, 1)

    def _request_answered(self, response: Response) -> Response:
        started = g._get_current_object().get("metrics_started")
        req = request._get_current_object()  # one proxy lookup for three reads
        if started is None or req.path in OPERATIONAL_PATHS:
            return response
        method, status = req.method, response.status_code
        self._buffer.observe(self._series(self.request_seconds, method, req.endpoint, status),
                             time.perf_counter() - started)
        self._buffer.inc(self._series(self.requests, method, status))
        return response

    def _request_ended(self, exc: BaseException | None) -> None:
        self._buffer.inc(self.in_flight, -1)
        if exc is not None and request.path not in OPERATIONAL_PATHS:
            self._buffer.inc(self._series(self.request_exceptions, request.method, 500))
        self._buffer.flush_if_stale()

    def flush(self) -> None:
        """Write the gathered updates now (a stopping worker calls it: AppState.close)."""
        self._buffer.flush()

    def _series(self, metric: Any, *values: Any) -> Any:
        key = (metric, values)
        series = self._kept.get(key)
        if series is None:
            series = metric.labels(*values)
            if len(self._kept) < _KEPT_SERIES:
                self._kept[key] = series
        return series

    def loaded(self, models: list[Model]) -> None:
        for model in models:
            self.model_info.labels(model.name, model.version).set(1)

    def cache_lookup(self, model: str, result: str, tier: str, count: int) -> None:
        if count:
            self._buffer.inc(self._series(self.cache_lookups, model, result, tier), count)

    def cache_write_dropped(self, count: int) -> None:
        self._buffer.inc(self.cache_writes_dropped, count)

    def batch(self, model: Model, size: int, seconds: float) -> None:
        self._buffer.observe(self._series(self.batch_size, model.name), size)
        self._buffer.observe(self._series(self.inference_seconds, model.name), seconds)

    def waited(self, model: Model, seconds: float) -> None:
        self._buffer.observe(self._series(self.queue_wait, model.name), seconds)

    def rejected(self, model: Model) -> None:
        self._buffer.inc(self._series(self.rejected_requests, model.name))

    def answered(self, model: Model, predictions: list[Prediction]) -> None:
        counts: dict[str, int] = {}
        for prediction in predictions:
            counts[prediction.label] = counts.get(prediction.label, 0) + 1
        for label, count in counts.items():
            self._buffer.inc(self._series(self.predictions, model.name, label), count)


def _flush_before(app: Flask, path: str, buffer: MetricBuffer) -> None:
    """Make the scrape route write this worker's pending updates before it reads them."""
    endpoint = next((rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == path),
                    None)
    if endpoint is None:
        raise RuntimeError(f"no metrics route at {path}")
    view = app.view_functions[endpoint]

    @functools.wraps(view)
    def scrape(*args: Any, **kwargs: Any) -> Any:
        buffer.flush()
        return view(*args, **kwargs)

    app.view_functions[endpoint] = scrape
