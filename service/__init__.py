"""The inference service: ``create_app(settings)`` wires every part together.

Importing this package loads no model, opens no connection and reads no
environment; the factory does all of that, once per worker process.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Request, redirect, request
from flask_cors import CORS
from flask_openapi3 import Info, OpenAPI
from pydantic import ValidationError

from service import request_log
from service.api.bodies import json_body
from service.api.health import health
from service.api.models import models
from service.api.predict import PREDICT_ENDPOINTS, predict, serve_validated
from service.api.repeats import RepeatTier
from service.batching import MicroBatcher
from service.cache import ResponseCache, init_cache
from service.errors import (
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
    register_error_handlers,
)
from service.inference import Inference, Resolver
from service.json_provider import OrjsonProvider
from service.metrics import Metrics, NullMetrics
from service.models.registry import Registry
from service.paths import OPERATIONAL_PATHS
from service.settings import Settings

log = logging.getLogger(__name__)

# How long a stopping worker waits for its pending cache writes. Not a setting: a
# healthy Redis takes one batched write (milliseconds); one that needs longer is
# failing, and a cache may lose answers. It only has to stay well inside the
# graceful_timeout (20 s by default) during which the master lets a worker finish.
CLOSE_FLUSH_SECONDS = 2.0


@dataclass
class AppState:
    """Everything a request needs, kept in ``app.extensions["infer"]``."""

    settings: Settings
    registry: Registry
    inference: Inference
    cache: ResponseCache | None = None
    repeats: RepeatTier | None = None
    metrics: NullMetrics = field(default_factory=NullMetrics)
    request_lines: request_log.RequestLines | None = None
    draining: bool = False

    def close(self, timeout: float = CLOSE_FLUSH_SECONDS) -> bool:
        """Before the worker exits: write its queued request lines and gathered metric
        updates, and let pending cache writes reach Redis for at most ``timeout``
        seconds. False when some cache writes were still pending (they are lost)."""
        if self.request_lines is not None:
            self.request_lines.flush()
        self.metrics.flush()
        if self.cache is None or self.cache.flush(0):
            return True  # nothing pending
        log.info("worker stopping: waiting up to %.1f s for pending cache writes", timeout)
        if self.cache.flush(timeout):
            return True
        log.warning("worker stopping with cache writes still pending after %.1f s", timeout)
        return False


class _App(OpenAPI):
    """``OpenAPI`` that asks once per function, not once per call, whether it is async.

    Flask passes every hook, view and error handler through ``ensure_sync`` each time it
    calls one (seven times for a cached prediction), and that asks ``inspect``: ~4,000
    CPU instructions a call. The app has a few dozen such functions; past
    ``_KEPT_ANSWERS`` the answer is worked out again instead of kept.
    """

    _KEPT_ANSWERS = 256

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        sync = self._sync.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if len(self._sync) < self._KEPT_ANSWERS:
                self._sync[func] = sync
        return sync


def create_app(settings: Settings | None = None) -> OpenAPI:
    """Build the Flask application from ``settings`` (the environment when None)."""
    settings = settings or Settings()
    app = _App(
        __name__,
        info=Info(title="Inference service", version="1.0.0",
                  description="iris and sentiment models behind a validated JSON API"),
        security_schemes={"api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                      "description": "needed when INFER_API_KEYS is set"}},
        validation_error_callback=_validation_error,
        doc_ui=settings.docs_enabled,
        doc_prefix="/openapi",
    )
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.request_class = _limited_requests(settings.max_body_bytes)
    app.json = OrjsonProvider(app)

    registry = Registry.load(settings.models_dir, default_versions=settings.default_versions,
                             max_text_length=settings.max_text_length,
                             lean=settings.lean_scorers)
    if not registry.ready:
        log.error("not ready: %s", "; ".join(registry.problems))

    # metrics first: its in-flight gauge must count every request the later hooks see
    metrics = Metrics(app) if settings.metrics_enabled else NullMetrics()
    metrics.loaded(registry.all())
    request_lines = request_log.init_app(app)
    cache = init_cache(app, settings, metrics)
    # misses of a worker's local tier, gathered per model: one Redis read, one model call
    resolver = Resolver(cache, metrics, settings.cache_predict_ahead_below)
    batcher = MicroBatcher(settings.batch_for, metrics, work=resolver)
    inference = Inference(cache, runner=batcher.run, metrics=metrics)
    repeats = None
    if cache is not None and settings.cache_repeat_entries:
        repeats = RepeatTier(settings.cache_repeat_entries, settings.local_ttl_seconds, metrics)
    app.extensions["infer"] = AppState(settings, registry, inference, cache, repeats, metrics,
                                       request_lines)

    register_error_handlers(app)
    app.before_request(_check_api_key(settings))
    if repeats is not None:
        repeats.init_app(app)  # after the key check; it checks the content type itself
    app.before_request(_require_json)
    if settings.cors_origins:
        CORS(app, origins=settings.cors_origins)

    app.register_api(health)
    app.register_api(models)
    app.register_api(predict)
    serve_validated(app)
    if settings.docs_enabled:
        app.add_url_rule("/openapi.json", "openapi_json", lambda: app.api_doc)
        app.add_url_rule("/docs", "docs", lambda: redirect("/openapi/swagger"))
    return app


def _limited_requests(max_body_bytes: int) -> type[Request]:
    """Requests that know the body limit themselves (``MAX_CONTENT_LENGTH`` holds it too).

    Flask's ``Request.max_content_length`` returns a limit set on the request first
    (``_max_content_length``, which this class presets) and otherwise reads the config
    through the ``current_app`` proxy, twice: ~15,000 CPU instructions for every request
    whose body is read. A view may still set its own limit on ``request``.
    """
    class LimitedRequest(Request):
        _max_content_length = max_body_bytes

    return LimitedRequest


def _validation_error(exc: ValidationError):
    """flask-openapi3's failed validations (the model routes' paths), as every 422."""
    return error_response(ValidationFailed.from_pydantic(exc))


def _check_api_key(settings: Settings):
    keys = [key.encode() for key in settings.api_keys]

    def check():
        if not keys or request.path in OPERATIONAL_PATHS:
            return
        sent = request.headers.get("X-API-Key", "").encode()
        # compare against every key, so timing tells nothing about which one nearly matched
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(sent, key)
        if not matched:
            raise Unauthorized("a valid X-API-Key header is required")

    return check


def _require_json():
    """POST bodies must be JSON: 415 for another type, 400 for broken JSON.

    The predict views parse their bodies themselves, together with validation
    (service/api/bodies.py), and answer broken JSON with the same 400.
    """
    req = request._get_current_object()  # one proxy lookup for every read below
    if req.method != "POST" or req.routing_exception is not None:
        return  # routing answers 404/405 first
    if not req.is_json:
        raise UnsupportedMediaType("send the body as application/json",
                                   details={"content_type": req.content_type})
    if req.endpoint not in PREDICT_ENDPOINTS:
        json_body(req)
