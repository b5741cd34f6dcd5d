"""The stack's settings and rendered files, checked by the real tools (nginx -t, promtool)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from honcho.environ import parse_procfile

from deploy.procs import ROOT, binary, nginx_syntax_ok
from deploy.stack import ServiceLimits, StackConfig, render_nginx, render_stack
from deploy.stack.config import STACK_ENV, read_env_file

ARCHITECTURE_DEFAULTS = {
    "INFER_REPLICAS": "2",
    "INFER_BASE_PORT": "8001",
    "INFER_NGINX_PORT": "8080",
    "INFER_NGINX_STATUS_PORT": "8081",
    "INFER_NGINX_EXPORTER_PORT": "9113",
    "INFER_PROMETHEUS_PORT": "9090",
    "INFER_REDIS_PORT": "6379",
    "INFER_GRAFANA_PORT": "3000",
    "INFER_RATE_LIMIT_RPS": "0",
}


def test_stack_env_holds_the_defaults_the_architecture_names():
    values = read_env_file(STACK_ENV)
    assert {name: values[name] for name in ARCHITECTURE_DEFAULTS} == ARCHITECTURE_DEFAULTS


def test_environment_overrides_stack_env_and_replica_ports_follow_the_base_port():
    config = StackConfig.load({"INFER_REPLICAS": "3", "INFER_BASE_PORT": "9001"})
    assert config.replica_addresses == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
    assert config.nginx_port == 8080


def test_replicas_share_the_hosts_cores_unless_workers_are_given(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert StackConfig.load({"INFER_REPLICAS": "2"}).workers == 4
    assert StackConfig.load({"INFER_REPLICAS": "3"}).workers == 2
    assert StackConfig.load({"INFER_REPLICAS": "16"}).workers == 1, "at least one each"
    config = StackConfig.load({"INFER_REPLICAS": "2", "INFER_WORKERS": "3"})
    assert config.workers == 3
    processes = parse_procfile(render_stack(config, tmp_path).procfile.read_text()).processes
    assert all("INFER_WORKERS=3 " in processes[f"app{i}"] for i in (1, 2))


def test_replicas_write_their_own_log_files_in_the_run_dir(tmp_path):
    run = render_stack(StackConfig.load({"INFER_REPLICAS": "2"}), tmp_path)
    processes = parse_procfile(run.procfile.read_text()).processes
    for index in (1, 2):
        assert f"INFER_LOG_FILE={run.replica_log(index)} " in processes[f"app{index}"]
        assert run.replica_log(index).parent.is_dir()
    assert "INFER_LOG_FILE" not in processes["nginx"]


def test_a_non_numeric_port_is_refused_with_its_name():
    with pytest.raises(ValueError, match="INFER_NGINX_PORT"):
        StackConfig.load({"INFER_NGINX_PORT": "eighty"})


def test_nginx_body_limit_is_the_services_own_setting():
    config = StackConfig.load({"INFER_MAX_BODY_BYTES": "2048"})
    assert config.limits.max_body_bytes == 2048
    assert "client_max_body_size 2048;" in render_nginx(["a:1"], limits=config.limits)


def test_external_redis_url_replaces_the_stacks_own_redis(tmp_path):
    config = StackConfig.load({"REDIS_URL": "redis://127.0.0.1:7000/2"})
    run = render_stack(config, tmp_path)
    processes = parse_procfile(run.procfile.read_text()).processes
    assert "redis" not in processes
    assert all("INFER_REDIS_URL=redis://127.0.0.1:7000/2" in processes[f"app{i}"] for i in (1, 2))


def test_rendered_local_stack_passes_nginx_and_promtool_checks(tmp_path):
    config = StackConfig.load({"INFER_REPLICAS": "3", "INFER_RATE_LIMIT_RPS": "50"})
    run = render_stack(config, tmp_path)

    checked = nginx_syntax_ok(run.path / "nginx" / "nginx.conf", run.path / "nginx")
    assert checked.returncode == 0, checked.stderr
    promtool = subprocess.run(
        [binary("promtool"), "check", "config", str(run.path / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr

    processes = parse_procfile(run.procfile.read_text()).processes
    assert list(processes) == [
        "redis",
        "app1",
        "app2",
        "app3",
        "nginx",
        "nginx_exporter",
        "prometheus",
    ]
    for index, port in enumerate((8001, 8002, 8003), start=1):
        assert f"INFER_PORT={port} " in processes[f"app{index}"]
        assert (
            f"PROMETHEUS_MULTIPROC_DIR={run.path}/app{index}/metrics " in processes[f"app{index}"]
        )


def test_prometheus_scrapes_every_replica_directly_and_the_nginx_exporter(tmp_path):
    config = StackConfig.load({"INFER_SCRAPE_INTERVAL": "1s"})
    run = render_stack(config, tmp_path)
    prometheus = yaml.safe_load((run.path / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["global"]["scrape_interval"] == "1s"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["infer"]["static_configs"][0]["targets"] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert jobs["nginx"]["static_configs"][0]["targets"] == ["127.0.0.1:9113"]
    assert prometheus["rule_files"] == [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]


def test_nginx_template_has_the_retry_keepalive_and_privacy_rules():
    text = render_nginx(["app1:8000", "app2:8000"], limits=ServiceLimits(docs_enabled=False))
    assert "least_conn;" in text
    assert "server app1:8000 max_fails=3 fail_timeout=5s;" in text
    assert 'proxy_set_header Connection "";' in text
    assert "keepalive_timeout 60s;" in text
    assert text.count("http_503 non_idempotent;") == 1
    predict = text[text.index("location ~ ^/v1/models/") :]
    assert "non_idempotent" in predict[: predict.index("}")]
    assert "location ^~ /metrics" in text
    assert "location ^~ /docs" in text
    assert "location ^~ /openapi" in text
    assert "limit_req" not in text


def test_docs_stay_reachable_through_nginx_when_enabled():
    text = render_nginx(["app1:8000"], limits=ServiceLimits(docs_enabled=True))
    assert "location ^~ /docs" not in text


def test_rate_limit_appears_only_when_set_and_answers_429():
    text = render_nginx(["app1:8000"], rate_limit_rps=20)
    assert "rate=20r/s" in text
    assert "limit_req_status 429;" in text
    assert "burst=40 nodelay" in text


@pytest.mark.parametrize("bad", ["app1", ":8000", "app1:http"])
def test_an_upstream_without_host_and_port_is_refused(bad):
    with pytest.raises(ValueError, match="HOST:PORT"):
        render_nginx([bad])


def test_render_nginx_command_writes_a_config_nginx_accepts(tmp_path):
    out = tmp_path / "nginx.conf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.stack",
            "render-nginx",
            "--upstream",
            "127.0.0.1:8000",
            "--out",
            str(out),
            "--pid-file",
            str(tmp_path / "nginx.pid"),
            "--temp-dir",
            str(tmp_path),
            "--access-log",
            str(tmp_path / "access.log"),
        ],
        cwd=ROOT,
        check=True,
    )
    assert "server 127.0.0.1:8000 " in out.read_text()
    checked = nginx_syntax_ok(out, tmp_path)
    assert checked.returncode == 0, checked.stderr
