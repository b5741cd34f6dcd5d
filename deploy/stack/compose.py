"""Files docker-compose mounts, rendered from the same templates as the local stack.

docker-compose.yml names the replicas (services ``app1``..``appN``); NGINX's upstreams
and Prometheus's targets are rendered from that list, so the three cannot disagree.
Inside the compose network each container keeps its well-known port below; only the
published host ports come from deploy/stack.env.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deploy.stack.config import ROOT, ServiceLimits, StackConfig
from deploy.stack.render import render_nginx, render_prometheus

COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx" / "compose.conf"
PROMETHEUS_CONF = ROOT / "deploy" / "prometheus" / "prometheus.compose.yml"

APP_PORT = 8000
NGINX_PORT = 8080
NGINX_STATUS_PORT = 8081
NGINX_EXPORTER = "nginx-exporter:9113"
RULES_GLOB = "/etc/prometheus/rules/*.yml"

_REPLICA = re.compile(r"app\d+")


def replica_services(compose_file: Path = COMPOSE_FILE) -> list[str]:
    """The app replica service names of the compose file, in order (app1, app2, ...)."""
    services = yaml.safe_load(compose_file.read_text())["services"]
    names = [name for name in services if _REPLICA.fullmatch(name)]
    return sorted(names, key=lambda name: int(name[3:]))


def render_compose_files(compose_file: Path = COMPOSE_FILE) -> dict[Path, str]:
    """Path -> content of every file compose mounts that is rendered from a template."""
    targets = [f"{name}:{APP_PORT}" for name in replica_services(compose_file)]
    stack = StackConfig.load(environ={})
    return {
        NGINX_CONF: render_nginx(
            targets,
            listen=str(NGINX_PORT),
            # The exporter is another container, so stub_status cannot be on loopback;
            # its port is not published, only the compose network reaches it.
            status_listen=str(NGINX_STATUS_PORT),
            limits=ServiceLimits.defaults(),
            rate_limit_rps=stack.rate_limit_rps,
        ),
        PROMETHEUS_CONF: render_prometheus(
            targets,
            NGINX_EXPORTER,
            scrape_interval=stack.scrape_interval,
            rules_glob=RULES_GLOB,
        ),
    }


def write_compose_files(compose_file: Path = COMPOSE_FILE) -> list[Path]:
    rendered = render_compose_files(compose_file)
    for path, text in rendered.items():
        path.write_text(text)
    return list(rendered)
