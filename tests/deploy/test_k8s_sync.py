"""The copies inside deploy/k8s never drift from their one source: the NGINX template,
the Prometheus rule files and the Grafana dashboards."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from deploy.k8s import sync
from deploy.procs import binary, nginx_syntax_ok
from deploy.stack.render import render_nginx


def test_every_generated_copy_equals_a_fresh_render():
    drift = [str(path.relative_to(sync.ROOT)) for path in sync.differences()]
    assert drift == [], "run `make k8s-sync` and commit the result"


def test_the_k8s_nginx_config_is_the_shared_template_for_the_app_service():
    committed = sync.NGINX_CONF.read_text()
    assert committed == render_nginx(
        ["infer-app:8000"],
        listen="8080",
        status_listen="127.0.0.1:8081",
        limits=sync.ServiceLimits.from_service(sync.read_env_file(sync.APP_SETTINGS)),
        worker_processes="1",
    )
    assert "server infer-app:8000 " in committed


def test_the_check_command_fails_on_a_stale_copy(tmp_path, monkeypatch):
    stale = tmp_path / "nginx.conf"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(sync, "NGINX_CONF", stale)
    monkeypatch.setattr(sync, "MONITORING", tmp_path / "monitoring")
    assert sync.main(["--check"]) == 1
    assert sync.main([]) == 0
    assert sync.main(["--check"]) == 0
    assert stale.read_text() == sync.nginx_conf()
    assert (tmp_path / "monitoring" / "kustomization.yaml").exists()


@pytest.mark.parametrize("source", sorted(sync.RULES_SOURCE.glob("*.yml")), ids=lambda p: p.name)
def test_each_rule_file_becomes_a_prometheusrule_with_the_same_groups(source):
    copy = sync.MONITORING / f"{sync._rule_name(source)}-prometheusrule.yaml"
    rule = yaml.safe_load(copy.read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]


def test_promtool_accepts_the_rules_inside_every_prometheusrule(tmp_path):
    copies = sorted(sync.MONITORING.glob("*-prometheusrule.yaml"))
    assert copies, "no PrometheusRule generated"
    files = []
    for copy in copies:
        groups = yaml.safe_load(copy.read_text())["spec"]
        path = tmp_path / copy.name
        path.write_text(yaml.safe_dump(groups))
        files.append(str(path))
    result = subprocess.run(
        [binary("promtool"), "check", "rules", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_is_a_configmap_for_the_grafana_sidecar():
    component = yaml.safe_load((sync.MONITORING / "kustomization.yaml").read_text())
    generators = {g["name"]: g for g in component.get("configMapGenerator", [])}
    sources = sorted(sync.DASHBOARDS_SOURCE.glob("*.json"))
    assert len(generators) == len(sources)
    for source in sources:
        generator = generators[sync.dashboard_configmap(source)]
        assert generator["files"] == [f"dashboards/{source.name}"]
        assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
        assert generator["options"]["disableNameSuffixHash"] is True
        # Client-side `kubectl apply` keeps a copy in an annotation limited to 256 KiB.
        assert source.stat().st_size < 200 * 1024


def test_nginx_accepts_the_k8s_config(tmp_path):
    """`nginx -t` on the cluster config; only what cannot exist here is swapped: the
    Service name (resolved by cluster DNS) for loopback, and /tmp for a scratch dir."""
    conf = sync.NGINX_CONF.read_text()
    upstream = f"server {sync.app_upstream()} "
    assert upstream in conf
    conf = conf.replace(upstream, "server 127.0.0.1:8000 ").replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(conf)
    result = nginx_syntax_ok(tmp_path / "nginx.conf", tmp_path)
    assert result.returncode == 0, result.stderr
