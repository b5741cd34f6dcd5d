"""The two systems the benchmark measures, each started on free loopback ports.

- ``stack``: the real thing, started by ``python -m deploy.stack up`` (what ``make up``
  runs) with only the serving path: Redis, two Gunicorn gevent replicas and NGINX in
  front. Prometheus and the exporter are left out so they add no noise.
- ``naive``: ``bench/naive_app.py`` under Gunicorn sync workers, reached directly (no
  NGINX): one predict per request, no cache, no batching.

Processes are started and always stopped (whole process group) by the same helpers
the integration tests use, ``deploy/procs.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from deploy.procs import (
    ROOT,
    ProcessExited,
    Server,
    binary,
    free_port,
    free_ports,
    http_ok,
    running,
)
from deploy.stack import StackConfig

# the models `make up` serves: INFER_MODELS_DIR as the Makefile sets it, else models/
MODELS_DIR = Path(os.environ.get("INFER_MODELS_DIR") or ROOT / "models").resolve()
NAIVE_WORKERS = 5
REPLICAS = 2
STACK_PROCESSES = ",".join(["redis", *(f"app{i}" for i in range(1, REPLICAS + 1)), "nginx"])


@dataclass
class System:
    """A started system: where to send traffic, and what it was started with."""

    name: str
    url: str
    settings: dict[str, str] = field(default_factory=dict)
    root_pid: int = 0
    """The launcher's pid; the system is it and every process below it."""
    metrics_urls: list[str] = field(default_factory=list)
    """Base URLs whose ``/metrics`` describe the system from inside (the replicas)."""

    def cpu_seconds(self) -> float:
        """CPU time used so far by the system's live processes (user + system)."""
        return tree_cpu_seconds(self.root_pid) if self.root_pid else 0.0


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and every live process below it.

    By parentage, not session: honcho starts each of its processes in a new session.
    """
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        # after the command: state(0) ppid(1) ... utime(11) stime(12)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = int(fields[11]) + int(fields[12])
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += ticks.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def ensure_models() -> None:
    """Train the models into ``models/`` unless they are there, with the service's command."""
    subprocess.run(
        [sys.executable, "-m", "service.train", "--if-missing", "--models-dir", str(MODELS_DIR)],
        cwd=ROOT,
        check=True,
    )


START_ATTEMPTS = 3
"""Free ports can be taken by another process before the stack binds them; retry then."""


def _stack_env(settings: dict[str, str] | None) -> dict[str, str]:
    names = ("INFER_NGINX_PORT", "INFER_NGINX_STATUS_PORT", "INFER_REDIS_PORT",
             "INFER_NGINX_EXPORTER_PORT", "INFER_PROMETHEUS_PORT")
    ports = free_ports(REPLICAS + len(names), consecutive=REPLICAS)
    env = {name: str(port) for name, port in zip(names, ports[REPLICAS:], strict=True)}
    env["INFER_BASE_PORT"] = str(ports[0])
    env["INFER_REPLICAS"] = str(REPLICAS)
    env["INFER_MODELS_DIR"] = str(MODELS_DIR)
    env.update(settings or {})
    env["REDIS_URL"] = ""  # the stack's own Redis, never one from the caller's environment
    return env


@contextlib.contextmanager
def stack(workdir: Path, settings: dict[str, str] | None = None) -> Iterator[System]:
    """The stack's serving path on free ports.

    Its settings are ``deploy/stack.env``, the ``INFER_*`` environment (for example
    ``INFER_WORKERS``) as for ``make up``, then ``settings``; ports are replaced by free ones.
    """
    with contextlib.ExitStack() as cleanup:
        for attempt in range(1, START_ATTEMPTS + 1):
            env = _stack_env(settings)
            url = f"http://127.0.0.1:{env['INFER_NGINX_PORT']}"
            replicas = [int(env["INFER_BASE_PORT"]) + i for i in range(REPLICAS)]
            server = Server(
                name="stack",
                args=[sys.executable, "-m", "deploy.stack", "up",
                      "--run-dir", str(workdir / "stack"), "--only", STACK_PROCESSES],
                env=env,
                log_path=workdir / "stack.log",
            )  # fmt: skip
            # Every replica must answer, and before NGINX is asked at all: a request NGINX
            # sends to a booting replica marks it failed for a while (502s after start).
            urls = [*(f"http://127.0.0.1:{p}/readyz" for p in replicas), f"{url}/readyz"]
            try:
                cleanup.enter_context(running(server, lambda u=urls: all(map(http_ok, u)), 180))
                break
            except ProcessExited as exc:  # the launcher refused a port taken meanwhile
                if "ports already in use" not in str(exc) or attempt == START_ATTEMPTS:
                    raise
        given = {k: v for k, v in os.environ.items() if k.startswith("INFER_") and "PORT" not in k}
        given.update(settings or {})
        given.update(replicas=str(REPLICAS), processes=STACK_PROCESSES, front="NGINX")
        given["workers per replica"] = str(StackConfig.load(env).workers)
        given["replica ports"] = ",".join(str(p) for p in replicas)
        replica_urls = [f"http://127.0.0.1:{p}" for p in replicas]
        yield System("stack", url, given, root_pid=server.pid, metrics_urls=replica_urls)


@contextlib.contextmanager
def naive(workdir: Path, workers: int = NAIVE_WORKERS) -> Iterator[System]:
    """The naive baseline under ``workers`` Gunicorn sync workers, reached directly."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(
        name="naive",
        args=[binary("gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
              "--worker-class", "sync", "--log-level", "warning",
              f"bench.naive_app:create_app({str(MODELS_DIR)!r})"],
        # Only the baseline's own process: no INFER_* settings, no multiprocess metrics.
        env={"PYTHONPATH": str(ROOT)},
        log_path=workdir / "naive.log",
    )  # fmt: skip
    with running(server, lambda: http_ok(f"{url}/healthz"), timeout=120):
        settings = {"workers": str(workers), "worker_class": "sync", "front": "none (direct)"}
        yield System("naive", url, settings, root_pid=server.pid)
