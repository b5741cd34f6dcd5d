"""docker-compose.yml and the Dockerfile, validated without a Docker engine.

The compose file is checked by docker-compose itself and by the Compose Spec schema;
the Dockerfile by hadolint. The tests below also hold the three lists of replicas
(compose services, NGINX upstreams, Prometheus targets) to one another.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from deploy.procs import ROOT, binary
from deploy.stack.compose import (
    APP_PORT,
    COMPOSE_FILE,
    NGINX_CONF,
    PROMETHEUS_CONF,
    render_compose_files,
    replica_services,
)
from deploy.stack.config import STACK_ENV, read_env_file

DOCKERFILE = ROOT / "Dockerfile"


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_docker_compose_accepts_the_file_with_the_stack_env():
    checked = run(binary("docker-compose"), "--env-file", str(STACK_ENV), "config", "-q")
    assert checked.returncode == 0, checked.stderr


def test_docker_compose_refuses_to_guess_ports_without_the_stack_env(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {name: value for name, value in os.environ.items() if not name.startswith("INFER_")}
    checked = run(binary("docker-compose"), "--env-file", str(empty), "config", "-q", env=env)
    assert checked.returncode != 0
    assert "pass --env-file deploy/stack.env" in checked.stderr


def test_compose_file_follows_the_compose_spec_schema():
    checked = run(
        binary("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_as_many_replicas_as_the_stack_default():
    replicas = int(read_env_file(STACK_ENV)["INFER_REPLICAS"])
    assert replica_services() == [f"app{index}" for index in range(1, replicas + 1)]


def test_nginx_upstreams_prometheus_targets_and_compose_services_name_the_same_replicas():
    expected = [f"{name}:{APP_PORT}" for name in replica_services()]
    upstreams = re.findall(r"^\s*server (\S+) max_fails", NGINX_CONF.read_text(), re.MULTILINE)
    jobs = {
        job["job_name"]: job
        for job in yaml.safe_load(PROMETHEUS_CONF.read_text())["scrape_configs"]
    }
    assert upstreams == expected
    assert jobs["infer"]["static_configs"][0]["targets"] == expected
    services = compose()["services"]
    assert jobs["nginx"]["static_configs"][0]["targets"] == ["nginx-exporter:9113"]
    assert "nginx-exporter" in services
    assert f"http://nginx:{8081}/stub_status" in " ".join(services["nginx-exporter"]["command"])


def test_rendered_compose_files_are_up_to_date_with_their_templates():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in render_compose_files().items()
        if path.read_text() != text
    ]
    assert not stale, f"run `python -m deploy.stack render-compose`: {stale} are stale"


def test_every_published_port_comes_from_the_stack_env():
    names = set(read_env_file(STACK_ENV))
    for service, spec in compose()["services"].items():
        for mapping in spec.get("ports", []):
            match = re.fullmatch(r"\$\{(\w+):\?[^}]*\}:(\d+)", mapping)
            assert match, f"{service} publishes {mapping!r} without a stack.env name"
            assert match.group(1) in names


def test_services_wait_for_the_health_of_what_they_depend_on():
    services = compose()["services"]
    for name in [*replica_services(), "nginx", "prometheus", "grafana"]:
        conditions = {dep["condition"] for dep in services[name]["depends_on"].values()}
        assert conditions == {"service_healthy"}, name
    for name in ["redis", *replica_services(), "nginx", "prometheus"]:
        assert "healthcheck" in services[name], name
    assert "readyz" in " ".join(services["app1"]["healthcheck"]["test"])


def test_locust_runs_only_under_the_load_profile():
    services = compose()["services"]
    profiled = {name for name, spec in services.items() if spec.get("profiles")}
    assert profiled == {"locust-master", "locust-worker"}
    assert all(services[name]["profiles"] == ["load"] for name in profiled)


@pytest.mark.parametrize("service", ["nginx", "prometheus", "grafana", "locust-master"])
def test_every_file_a_service_mounts_is_in_the_repository(service):
    for volume in compose()["services"][service].get("volumes", []):
        source = volume.split(":")[0]
        assert (ROOT / source).exists(), f"{service} mounts missing {source}"


def test_dockerfile_passes_hadolint():
    checked = run(binary("hadolint"), str(DOCKERFILE))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dockerfile_installs_dependencies_before_code_trains_and_runs_as_non_root():
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") >= 2
    assert text.index("COPY pyproject.toml") < text.index("COPY service/")
    assert "python -m service.train" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r'^CMD \["gunicorn", "-c", "service/gunicorn_conf.py"', text, re.MULTILINE)
