"""The whole stack, started once per test session the way `make up` starts it.

``stack`` renders a run dir with `deploy.stack` (the renderer `make up` uses) on free
loopback ports, runs Redis, NGINX, the NGINX exporter and Prometheus from the
rendered Procfile under honcho (`python -m deploy.stack up --only ...`), and runs
the two Gunicorn replicas from the same Procfile lines as separate processes, so a
test can SIGKILL one without honcho stopping everything. Prometheus scrapes every
second. Everything is stopped when the session ends, whatever happened.

Tests that kill a replica must start it again (``stack.start_replica``) before they
return; ``stack.ensure_replicas`` restores any a failed test left dead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.procs import (
    ROOT,
    Server,
    free_ports,
    http_ok,
    port_open,
    tail,
    wait_until,
)
from deploy.stack import RunDir, StackConfig, render_stack
from deploy.stack.runner import procfile_processes

REPLICAS = 2
INFRA = ("redis", "nginx", "nginx_exporter", "prometheus")
READY_TIMEOUT = 120.0


@dataclass
class Stack:
    """A running stack.

    Attributes:
        config: the `StackConfig` it was rendered from (ports, replica count, ...).
        run: its `RunDir` (rendered files, logs, `nginx/access.log`).
        nginx_url: ``http://127.0.0.1:<port>``, the load-balanced entry point.
        replica_urls: one base URL per replica, ``replica_urls[0]`` is ``app1``.
        replica_addresses: ``127.0.0.1:<port>`` per replica: the values of NGINX's
            ``X-Upstream`` header and of Prometheus's ``instance`` label.
        prometheus_url: Prometheus's base URL (scrape and evaluation interval 1 s).
        nginx_exporter_url: the exporter's base URL.
        redis_url: ``redis://127.0.0.1:<port>/0``, the cache every replica shares.

    Methods: ``kill_replica(i)`` (SIGKILL, ``i`` is 0-based), ``start_replica(i)``,
    ``replica_running(i)``, ``ensure_replicas()``, ``query(promql)``,
    ``wait_for_targets_up()``, ``upstream_of(response)``, ``log_tails()``.
    """

    config: StackConfig
    run: RunDir
    infra: Server
    commands: dict[str, str]
    replicas: list[Server | None] = field(default_factory=list)

    @property
    def nginx_url(self) -> str:
        return f"http://127.0.0.1:{self.config.nginx_port}"

    @property
    def replica_addresses(self) -> list[str]:
        return self.config.replica_addresses

    @property
    def replica_urls(self) -> list[str]:
        return [f"http://{address}" for address in self.replica_addresses]

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.config.prometheus_port}"

    @property
    def nginx_exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.config.nginx_exporter_port}"

    @property
    def redis_url(self) -> str:
        return self.config.redis_url

    # --- replicas -------------------------------------------------------------------
    def start_replica(self, index: int, timeout: float = READY_TIMEOUT) -> None:
        """Start replica ``index`` from its Procfile line and wait until it is ready."""
        name = f"app{index + 1}"
        server = Server(
            name=name,
            args=["/bin/sh", "-c", self.commands[name]],
            log_path=self.run.path / f"{name}.log",
        )
        self.replicas[index] = server.start()
        try:
            wait_until(
                lambda: http_ok(f"{self.replica_urls[index]}/readyz") or _exited(server),
                timeout,
                what=f"{name} to be ready",
            )
        except Exception:
            server.stop()
            raise RuntimeError(f"{name} did not become ready\n{server.log_tail()}") from None

    def kill_replica(self, index: int) -> None:
        """SIGKILL replica ``index``: its Gunicorn master and every worker, at once."""
        server = self.replicas[index]
        assert server is not None and server.alive(), f"app{index + 1} is not running"
        os.killpg(server.pid, signal.SIGKILL)
        server.process.wait(10)
        port = self.config.replica_ports[index]
        wait_until(lambda: not port_open(port), 10, what=f"port {port} to close")
        self.replicas[index] = None

    def replica_running(self, index: int) -> bool:
        server = self.replicas[index]
        return server is not None and server.alive()

    def ensure_replicas(self) -> None:
        """Start every replica that is not running (after a test that killed one)."""
        for index in range(len(self.replicas)):
            if not self.replica_running(index):
                self.start_replica(index)

    def stop(self) -> None:
        for server in self.replicas:
            if server is not None:
                server.stop()
        self.infra.stop(timeout=15)

    # --- Prometheus -----------------------------------------------------------------
    def query(self, promql: str) -> list[dict]:
        """The instant-query result vector of ``promql``."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for_targets_up(self, timeout: float = 30.0) -> None:
        """Until Prometheus's last scrape of every replica succeeded."""

        def all_up() -> bool:
            up = {r["metric"]["instance"]: r["value"][1] for r in self.query('up{job="infer"}')}
            return all(up.get(address) == "1" for address in self.replica_addresses)

        wait_until(all_up, timeout, interval=0.25, what="every replica target up")

    @staticmethod
    def upstream_of(response) -> str:
        """The replica that answered: the last address of NGINX's ``X-Upstream``."""
        return re.split(r",\s*", response.headers["X-Upstream"])[-1]

    def log_tails(self) -> str:
        parts = [f"--- honcho ---\n{self.infra.log_tail(60)}"]
        parts += [f"--- {s.name} ---\n{s.log_tail(30)}" for s in self.replicas if s]
        for index in range(1, len(self.replicas) + 1):
            path = self.run.replica_log(index)
            if path.exists():
                parts.append(f"--- {path} ---\n{tail(path, 30)}")
        return "\n".join(parts)


def _exited(server: Server) -> bool:
    if not server.alive():
        raise RuntimeError(f"{server.name} exited early\n{server.log_tail()}")
    return False


def stack_ports(names: list[str], replicas: int) -> dict[str, int]:
    """Distinct free ports for ``names`` and a run of ``replicas`` consecutive ones,
    below the ephemeral range (``free_ports``): a client connection's source port can
    never take a replica's port while it restarts."""
    ports = free_ports(replicas + len(names), consecutive=replicas)
    return {"INFER_BASE_PORT": ports[0], **dict(zip(names, ports[replicas:], strict=True))}


def _models_dir(tmp: Path) -> Path:
    """The trained models `make up` serves, or models trained now into ``tmp``."""
    from service.train import has_models

    models = ROOT / os.environ.get("INFER_MODELS_DIR", "models")
    if has_models(models):
        return models
    target = tmp / "models"
    subprocess.run(
        [sys.executable, "-m", "service.train"],
        cwd=ROOT,
        env={**os.environ, "INFER_MODELS_DIR": str(target)},
        check=True,
        timeout=600,
    )
    return target


def stack_environ(tmp: Path, replicas: int = REPLICAS) -> dict[str, str]:
    """The environment `make up` would get, on free ports, with trained models."""
    models = _models_dir(tmp)
    ports = stack_ports(
        [
            "INFER_NGINX_PORT",
            "INFER_NGINX_STATUS_PORT",
            "INFER_NGINX_EXPORTER_PORT",
            "INFER_PROMETHEUS_PORT",
            "INFER_REDIS_PORT",
        ],
        replicas,
    )
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("INFER_") and name != "REDIS_URL"
    }
    return {
        **environ,
        **{name: str(port) for name, port in ports.items()},
        "INFER_REPLICAS": str(replicas),
        "INFER_SCRAPE_INTERVAL": "1s",
        "INFER_MODELS_DIR": str(models),
    }


@contextlib.contextmanager
def running_stack(tmp: Path) -> Iterator[Stack]:
    """Start the stack in ``tmp``; yield it once every part answers; always stop it."""
    environ = stack_environ(tmp)
    config = StackConfig.load(environ)
    run = render_stack(config, tmp / "run")
    infra = Server(
        name="honcho",
        args=[
            sys.executable,
            "-m",
            "deploy.stack",
            "up",
            "--run-dir",
            str(run.path),
            "--only",
            ",".join(INFRA),
        ],
        env=environ,
        log_path=tmp / "honcho.log",
    )
    stack = Stack(config, run, infra, procfile_processes(run), [None] * REPLICAS)
    try:
        _start(stack)
        yield stack
    finally:
        stack.stop()


def _start(stack: Stack) -> None:
    config = stack.config
    try:
        stack.infra.start()
        wait_until(
            lambda: (
                (
                    http_ok(f"{stack.nginx_url}/nginx-healthz")
                    and http_ok(f"{stack.prometheus_url}/-/ready")
                    and port_open(config.redis_port)
                )
                or _exited(stack.infra)
            ),
            60,
            what="redis, nginx and prometheus",
        )
        for index in range(REPLICAS):
            stack.start_replica(index)
        stack.wait_for_targets_up()
    except Exception as exc:
        raise RuntimeError(f"the stack did not start: {exc}\n{stack.log_tails()}") from exc


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """The running stack for the whole session; see `Stack` for what it offers."""
    with running_stack(tmp_path_factory.mktemp("stack")) as started:
        yield started


@pytest.fixture
def full_stack(stack: Stack) -> Iterator[Stack]:
    """``stack`` with every replica running before and after the test."""
    stack.ensure_replicas()
    yield stack
    stack.ensure_replicas()
