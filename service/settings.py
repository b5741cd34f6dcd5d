"""The one typed settings object.

Every knob of the service is a field here, read from the environment with the
``INFER_`` prefix (``INFER_MAX_INSTANCES=64``). The deploy files (NGINX, compose,
Kubernetes) use the same names, so a value is written in one place only.
Bad values fail at start-up, not on the first request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "INFER_"


def _split_csv(value: object) -> object:
    """Accept ``a,b`` as well as a JSON list for list fields from the environment."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class BatchSettings(BaseModel):
    """Micro-batching limits for one model."""

    max_size: int = Field(32, ge=1, le=4096)
    """Most instances predicted in one model call."""
    max_wait_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a queued request waits for company before its batch runs; a gevent worker
    runs the batch sooner once nothing else in it is ready (service/batching.py)."""
    queue_size: int = Field(2048, ge=1)
    """Most instances waiting per model and worker; beyond it requests get 503."""


class Settings(BaseSettings):
    """Settings of one service process (a Gunicorn replica and its workers)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- models -----------------------------------------------------------------
    models_dir: Path = Path("models")
    """Where trained artifacts and their metadata live (``<dir>/<name>/<version>/``)."""
    default_versions: dict[str, str] = {}
    """Pin the default version per model name; otherwise the newest trained one."""
    seed: int = 42
    """Random seed for training and data splits."""
    lean_scorers: bool = True
    """Predict with each model's lean numpy scorer, checked against its estimator at load
    (service/models/base.py); false: always call the estimator's ``predict_proba``."""

    # --- request limits ---------------------------------------------------------
    max_instances: int = Field(256, ge=1)
    """Most instances in one predict request."""
    max_text_length: int = Field(5000, ge=1)
    """Longest sentiment text, in characters."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest request body; NGINX's ``client_max_body_size`` uses the same value."""

    # --- access -----------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed by CORS (comma separated); none by default."""
    api_keys: Annotated[list[str], NoDecode] = Field(default=[], repr=False)
    """Accepted ``X-API-Key`` values (comma separated); empty means no key needed."""
    docs_enabled: bool = True
    """Serve ``/openapi.json`` and the Swagger UI at ``/docs``."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at ``/metrics``."""

    # --- cache ------------------------------------------------------------------
    redis_url: str | None = None
    """Redis for the shared response cache; unset means no cache (``X-Cache: bypass``)."""
    cache_ttl_seconds: int = Field(3600, ge=1)
    """How long a cached prediction lives."""
    cache_local_entries: int = Field(4096, ge=0)
    """Answers each worker keeps in memory in front of Redis (LRU); 0 turns the tier off."""
    cache_local_ttl_seconds: float = Field(300.0, gt=0)
    """How long a worker keeps a local copy (never longer than ``cache_ttl_seconds``)."""
    cache_repeat_entries: int = Field(1024, ge=0)
    """Responses to byte-identical small predict requests each worker keeps and answers
    again (LRU, service/api/repeats.py); 0 turns the tier off."""
    cache_prefix: str = "infer"
    """Prefix of every cache key, so several deployments can share one Redis."""
    cache_socket_timeout: float = Field(0.05, gt=0)
    """Seconds a Redis read or write may take before the cache counts as failed."""
    cache_connect_timeout: float = Field(0.05, gt=0)
    """Seconds a Redis connect may take."""
    cache_breaker_failures: int = Field(3, ge=1)
    """Consecutive Redis failures that open the circuit breaker."""
    cache_breaker_reset_seconds: float = Field(5.0, gt=0)
    """How long the open breaker skips Redis before it tries again."""
    cache_predict_ahead_below: float = Field(0.1, ge=0, le=1)
    """A batch is predicted while Redis answers its read as long as Redis had fewer than
    this share of the model's recently asked keys (their predictions are then wasted);
    0: always wait for the read and predict only what Redis lacks."""

    # --- batching ---------------------------------------------------------------
    batch: BatchSettings = BatchSettings()
    """Default micro-batching limits."""
    batch_overrides: dict[str, BatchSettings] = {}
    """Per-model limits, as JSON: ``{"sentiment": {"max_size": 64}}``."""

    # --- process (read by gunicorn.conf.py) -------------------------------------
    host: str = "127.0.0.1"
    """Address Gunicorn binds."""
    port: int = Field(8000, ge=1, le=65535)
    """Port Gunicorn binds."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Gunicorn worker processes; the number of cores by default."""
    worker_connections: int = Field(1000, ge=1)
    """Connections one gevent worker holds open at once (see gunicorn_conf.py)."""
    timeout: int = Field(30, ge=1)
    """Seconds before a silent worker is killed and replaced."""
    graceful_timeout: int = Field(20, ge=1)
    """Seconds a stopping worker has to finish its requests."""
    keepalive: int = Field(75, ge=1)
    """Idle keep-alive seconds; longer than NGINX's upstream keepalive_timeout (60 s)."""
    log_level: str = "info"
    """Log level of the service and Gunicorn."""
    log_file: Path | None = None
    """Write every log line to this file (appended, reopened when rotated away) and only
    warnings and errors to stdout; unset: everything to stdout, as containers expect."""
    gunicorn_access_log: bool = False
    """Also write Gunicorn's own JSON access line (the app already logs every request)."""

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _lists_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def local_ttl_seconds(self) -> float:
        """How long a worker keeps anything in memory: never longer than Redis would."""
        return min(self.cache_local_ttl_seconds, self.cache_ttl_seconds)

    def batch_for(self, model: str) -> BatchSettings:
        """The batching limits for ``model``."""
        return self.batch_overrides.get(model, self.batch)
