"""Real Redis and real Gunicorn replicas (two gevent workers each) on free ports."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import redis

from deploy.procs import free_port, gunicorn_server, http_ok, redis_server, running, wait_until


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="module")
def redis_url(workdir):
    port = free_port()
    server = redis_server(port, workdir)
    with running(server, lambda: redis.Redis(port=port).ping()):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def start_replica(workdir, models_dir):
    """``start_replica(redis_url=..., **env)`` -> base URL; stopped at module end."""
    with contextlib.ExitStack() as stack:

        def start(redis_url: str | None = None, models: str | None = None, **env: str):
            port = free_port()
            settings_env = {"INFER_MODELS_DIR": str(models or models_dir),
                            "INFER_CACHE_BREAKER_RESET_SECONDS": "1", **env}
            if redis_url:
                settings_env["INFER_REDIS_URL"] = redis_url
            server = gunicorn_server(port, workdir, settings_env)
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(running(server, lambda: http_ok(f"{url}/readyz")))
            # /readyz answers once one worker is up; the others may still be loading their
            # models. A worker writes its metrics file when its app is built, just before
            # it serves: wait for every worker's, so a test sees the whole replica.
            metrics_dir = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
            workers = int(server.env["INFER_WORKERS"])
            wait_until(lambda: len(list(metrics_dir.glob("counter_*.db"))) >= workers,
                       what=f"{workers} workers of {url} to build their apps")
            return url, server

        yield start
