"""Render the stack's configuration files from the templates in `deploy/`.

`render_nginx` is the one way any target (local, compose, Kubernetes) gets its
NGINX configuration; `render_stack` writes everything `make up` runs into a run dir.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from deploy.stack.config import ROOT, ServiceLimits, StackConfig

DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(DEPLOY)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def _nginx_errors(max_body_bytes: int) -> list[tuple[int, str, str]]:
    """(status, code, message) of every error NGINX answers itself."""
    return [
        (404, "not_found", "no such route"),
        (413, "payload_too_large", f"request body is larger than {max_body_bytes} bytes"),
        (429, "too_many_requests", "too many requests from this client; slow down"),
        (502, "bad_gateway", "no replica could answer"),
        (503, "service_unavailable", "the service is unavailable; try again"),
        (504, "gateway_timeout", "the replica did not answer in time"),
    ]


def _binary(name: str) -> str:
    """Absolute path of a system program (Debian puts nginx in /usr/sbin)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    return shlex.quote(found or name)


def render_nginx(
    upstreams: Sequence[str],
    *,
    listen: str = "8080",
    status_listen: str = "127.0.0.1:8081",
    limits: ServiceLimits | None = None,
    rate_limit_rps: int = 0,
    pid_file: str = "/tmp/nginx.pid",
    temp_dir: str | None = "/tmp",
    access_log: str = "/dev/stdout",
    error_log: str = "stderr",
    worker_processes: str = "auto",
) -> str:
    """The NGINX configuration for ``upstreams`` (``host:port`` each).

    The defaults suit a container: logs to stdout/stderr, pid and temp files in /tmp
    (so it runs as a non-root user). ``status_listen`` is where stub_status answers;
    keep it on loopback unless only a private network can reach it.
    """
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    for address in upstreams:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"upstream must be HOST:PORT, got {address!r}")
    limits = limits or ServiceLimits()
    return _templates.get_template("nginx/nginx.conf.j2").render(
        upstreams=list(upstreams),
        listen=listen,
        status_listen=status_listen,
        max_body_bytes=limits.max_body_bytes,
        docs_enabled=limits.docs_enabled,
        read_timeout=limits.timeout,
        rate_limit_rps=rate_limit_rps,
        rate_limit_burst=max(1, 2 * rate_limit_rps),
        pid_file=pid_file,
        temp_dir=temp_dir,
        access_log=access_log,
        error_log=error_log,
        worker_processes=worker_processes,
        errors=_nginx_errors(limits.max_body_bytes),
    )


def render_prometheus(
    replica_targets: Sequence[str],
    nginx_exporter_target: str,
    *,
    scrape_interval: str = "5s",
    rules_glob: str = str(RULES_DIR / "*.yml"),
) -> str:
    """Prometheus scraping each replica (job ``infer``) and the NGINX exporter (``nginx``)."""
    return _templates.get_template("prometheus/prometheus.yml.j2").render(
        replica_targets=list(replica_targets),
        nginx_exporter_target=nginx_exporter_target,
        scrape_interval=scrape_interval,
        rules_glob=rules_glob,
    )


def render_redis(config: StackConfig, workdir: Path) -> str:
    """A Redis for the cache: loopback, LRU-bounded, nothing written to disk."""
    return _templates.get_template("redis/redis.conf.j2").render(
        host=config.host,
        port=config.redis_port,
        maxmemory=config.redis_maxmemory,
        workdir=str(workdir),
    )


@dataclass(frozen=True)
class RunDir:
    """Where one stack's rendered files, pid files, logs and data live."""

    path: Path

    @property
    def procfile(self) -> Path:
        return self.path / "Procfile"

    @property
    def nginx_pid(self) -> Path:
        return self.path / "nginx" / "nginx.pid"

    @property
    def nginx_access_log(self) -> Path:
        return self.path / "nginx" / "access.log"

    def replica_metrics_dir(self, index: int) -> Path:
        return self.path / f"app{index}" / "metrics"

    def replica_log(self, index: int) -> Path:
        return self.path / f"app{index}" / "service.log"

    def pid_files(self) -> list[Path]:
        return sorted(self.path.rglob("*.pid"))


def replica_command(config: StackConfig, run: RunDir, index: int) -> str:
    """The shell command of replica ``index`` (1-based), as written in the Procfile."""
    port = config.replica_ports[index - 1]
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(run.replica_metrics_dir(index)),
        "INFER_HOST": config.host,
        "INFER_PORT": str(port),
        "INFER_REDIS_URL": config.redis_url,
        "INFER_MODELS_DIR": str(config.models_dir),
        "INFER_WORKERS": str(config.workers),
        # One JSON line per request: written by the replica itself. Relayed through
        # honcho's pipes, each line cost ~0.17 ms of the launcher's CPU (measured under
        # wrk), a quarter of what the replica spends on a cache hit. Warnings still
        # reach the console.
        "INFER_LOG_FILE": str(run.replica_log(index)),
    }
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    # The Gunicorn of the environment running this (make's $(VENV)), not one on PATH.
    gunicorn = shlex.quote(str(Path(sys.executable).parent / "gunicorn"))
    return (
        f"cd {shlex.quote(str(ROOT))} && exec env {assignments} {gunicorn} "
        f"-c service/gunicorn_conf.py 'service:create_app()'"
    )


def procfile_entries(config: StackConfig, run: RunDir) -> dict[str, str]:
    """Process name -> shell command, in start order."""
    path = run.path
    q = shlex.quote
    entries: dict[str, str] = {}
    if config.external_redis_url is None:
        entries["redis"] = f"exec {_binary('redis-server')} {q(str(path / 'redis' / 'redis.conf'))}"
    for index in range(1, config.replicas + 1):
        entries[f"app{index}"] = replica_command(config, run, index)
    entries["nginx"] = (
        f"exec {_binary('nginx')} -e stderr -p {q(str(path / 'nginx'))} "
        f"-c {q(str(path / 'nginx' / 'nginx.conf'))} -g 'daemon off;'"
    )
    # The exporter gives up at once if NGINX is not listening yet; honcho starts both
    # together, so let it retry for a while.
    entries["nginx_exporter"] = (
        f"exec {_binary('prometheus-nginx-exporter')} --nginx.retries=30 "
        "--nginx.retry-interval=1s "
        f"--nginx.scrape-uri=http://{config.host}:{config.nginx_status_port}/stub_status "
        f"--web.listen-address={config.host}:{config.nginx_exporter_port}"
    )
    prometheus_dir = path / "prometheus"
    entries["prometheus"] = (
        f"exec {_binary('prometheus')} "
        f"--config.file={q(str(prometheus_dir / 'prometheus.yml'))} "
        f"--storage.tsdb.path={q(str(prometheus_dir / 'data'))} "
        "--storage.tsdb.retention.time=2d "
        f"--web.listen-address={config.host}:{config.prometheus_port} "
        "--web.enable-lifecycle"
    )
    return entries


def render_stack(config: StackConfig, run_dir: Path) -> RunDir:
    """Write every configuration file and the Procfile of ``config`` into ``run_dir``."""
    run = RunDir(run_dir.resolve())
    for sub in ("nginx", "prometheus", "redis"):
        (run.path / sub).mkdir(parents=True, exist_ok=True)
    for index in range(1, config.replicas + 1):
        run.replica_metrics_dir(index).mkdir(parents=True, exist_ok=True)

    nginx_dir = run.path / "nginx"
    (nginx_dir / "nginx.conf").write_text(
        render_nginx(
            config.replica_addresses,
            listen=f"{config.host}:{config.nginx_port}",
            status_listen=f"{config.host}:{config.nginx_status_port}",
            limits=config.limits,
            rate_limit_rps=config.rate_limit_rps,
            pid_file=str(run.nginx_pid),
            temp_dir=str(nginx_dir),
            access_log=str(run.nginx_access_log),
        )
    )
    (run.path / "prometheus" / "prometheus.yml").write_text(
        render_prometheus(
            config.replica_addresses,
            f"{config.host}:{config.nginx_exporter_port}",
            scrape_interval=config.scrape_interval,
        )
    )
    (run.path / "redis" / "redis.conf").write_text(render_redis(config, run.path / "redis"))
    lines = [f"{name}: {command}" for name, command in procfile_entries(config, run).items()]
    run.procfile.write_text("\n".join(lines) + "\n")
    return run
