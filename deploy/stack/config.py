"""The stack's settings: `deploy/stack.env` defaults, overridden by the environment.

The same file is compose's `--env-file`, so a port is written in one place only.
Service settings that NGINX must agree with (body limit, docs, timeout) are read
from `service.settings.Settings`, so they keep their one name and default too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK_ENV = ROOT / "deploy" / "stack.env"
LOOPBACK = "127.0.0.1"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file; blank lines and ``#`` comments are skipped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        values[key.strip()] = value.strip()
    return values


def _int(values: Mapping[str, str], name: str, low: int = 0) -> int:
    try:
        number = int(values[name])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name} must be an integer, got {values.get(name)!r}") from exc
    if number < low:
        raise ValueError(f"{name} must be at least {low}, got {number}")
    return number


def _workers(values: Mapping[str, str], replicas: int) -> int:
    """Workers per replica. Every replica runs on this host, so by default they share
    its cores (at least one worker each): more busy Python processes than cores only
    adds context switches. On 2 cores, 2 replicas x 1 worker served cached iris at
    ~2,340 rps against ~1,760 with the 2 x 2 that `cpu_count` per replica gave."""
    if values.get("INFER_WORKERS"):
        return _int(values, "INFER_WORKERS", low=1)
    return max(1, (os.cpu_count() or 1) // replicas)


_MIRRORED = ("max_body_bytes", "docs_enabled", "timeout")


@dataclass(frozen=True)
class ServiceLimits:
    """The service settings NGINX mirrors (see `service/settings.py`)."""

    max_body_bytes: int = 1_048_576
    docs_enabled: bool = True
    timeout: int = 30

    @classmethod
    def defaults(cls) -> ServiceLimits:
        """The service's own defaults, whatever the environment says (for compose files)."""
        from service.settings import Settings

        return cls(**{name: Settings.model_fields[name].default for name in _MIRRORED})

    @classmethod
    def from_service(cls, environ: Mapping[str, str]) -> ServiceLimits:
        """The values a replica started with ``environ`` uses."""
        from service.settings import Settings

        prefix = "INFER_"
        names = _MIRRORED
        given = {
            name: environ[prefix + name.upper()]
            for name in names
            if prefix + name.upper() in environ
        }
        settings = Settings(**given)
        return cls(**{name: getattr(settings, name) for name in names})


@dataclass(frozen=True)
class StackConfig:
    """Ports, sizes and the Redis of one local stack; every field has a `stack.env` name."""

    replicas: int = 2
    base_port: int = 8001
    nginx_port: int = 8080
    nginx_status_port: int = 8081
    nginx_exporter_port: int = 9113
    prometheus_port: int = 9090
    scrape_interval: str = "5s"
    redis_port: int = 6379
    redis_maxmemory: str = "128mb"
    grafana_port: int = 3000
    rate_limit_rps: int = 0
    workers: int = 1
    """Gunicorn workers per replica: `INFER_WORKERS`, else the host's cores shared out."""
    external_redis_url: str | None = None
    """`REDIS_URL` from the environment: use that Redis and start none."""
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    models_dir: Path = ROOT / "models"
    """Trained artifacts every replica serves (`INFER_MODELS_DIR`, made absolute)."""
    host: str = LOOPBACK

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, env_file: Path = STACK_ENV
    ) -> StackConfig:
        """Defaults from ``env_file``, each overridden by the same name in ``environ``."""
        environ = os.environ if environ is None else environ
        values = {**read_env_file(env_file), **environ}
        replicas = _int(values, "INFER_REPLICAS", low=1)
        return cls(
            replicas=replicas,
            base_port=_int(values, "INFER_BASE_PORT", low=1),
            nginx_port=_int(values, "INFER_NGINX_PORT", low=1),
            nginx_status_port=_int(values, "INFER_NGINX_STATUS_PORT", low=1),
            nginx_exporter_port=_int(values, "INFER_NGINX_EXPORTER_PORT", low=1),
            prometheus_port=_int(values, "INFER_PROMETHEUS_PORT", low=1),
            scrape_interval=values["INFER_SCRAPE_INTERVAL"],
            redis_port=_int(values, "INFER_REDIS_PORT", low=1),
            redis_maxmemory=values["INFER_REDIS_MAXMEMORY"],
            grafana_port=_int(values, "INFER_GRAFANA_PORT", low=1),
            rate_limit_rps=_int(values, "INFER_RATE_LIMIT_RPS"),
            workers=_workers(values, replicas),
            external_redis_url=values.get("REDIS_URL") or None,
            limits=ServiceLimits.from_service(values),
            models_dir=(ROOT / values.get("INFER_MODELS_DIR", "models")).resolve(),
        )

    @property
    def replica_ports(self) -> list[int]:
        return [self.base_port + index for index in range(self.replicas)]

    @property
    def replica_addresses(self) -> list[str]:
        return [f"{self.host}:{port}" for port in self.replica_ports]

    @property
    def redis_url(self) -> str:
        """The Redis every replica uses: the external one, or the stack's own."""
        return self.external_redis_url or f"redis://{self.host}:{self.redis_port}/0"

    def urls(self) -> dict[str, str]:
        """What a person opens, by name."""
        urls = {
            "api (NGINX)": f"http://{self.host}:{self.nginx_port}",
            "prometheus": f"http://{self.host}:{self.prometheus_port}",
            "nginx exporter": f"http://{self.host}:{self.nginx_exporter_port}/metrics",
            "redis": self.redis_url,
        }
        for index, address in enumerate(self.replica_addresses, start=1):
            urls[f"replica app{index}"] = f"http://{address}"
        if self.limits.docs_enabled:
            urls["docs"] = f"http://{self.host}:{self.nginx_port}/docs"
        return urls
