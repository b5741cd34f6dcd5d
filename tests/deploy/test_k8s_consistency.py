"""The rendered manifests agree with each other and with the service's settings:
names, ports, selectors, timeouts and the security every container must have."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from deploy.k8s.build import K8S, variants
from deploy.k8s.build import manifests as render_manifests
from deploy.k8s.manifests import Manifests, container, pod_labels, port_number, selects
from service.settings import ENV_PREFIX, Settings

ALL = variants()
BARE = [variant for variant in ALL if not variant.components]
APP = "infer-app"

# Names the app Deployment may set that are not Settings fields, and why.
NOT_SETTINGS = {
    # Read by prometheus_client before Python imports the app (docs/architecture.md).
    "PROMETHEUS_MULTIPROC_DIR",
    # Holds the Secret's Redis password only so Kubernetes can expand $(REDIS_PASSWORD)
    # into INFER_REDIS_URL; the service never reads it (checked below).
    "REDIS_PASSWORD",
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Manifests]:
    return {variant.name: render_manifests(variant) for variant in ALL}


def _ids(variant):
    return variant.name


def _app_env(found: Manifests) -> dict[str, str | None]:
    """Every variable the app container gets: ConfigMap keys first, then env entries."""
    app = container(found.get("Deployment", APP), "app")
    values: dict[str, str | None] = {}
    for source in app.get("envFrom", []):
        values.update(found.get("ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in app.get("env", []):
        values[entry["name"]] = entry.get("value")
    return values


def _settings_from(env: dict[str, str | None], monkeypatch) -> Settings:
    for name in list(env):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and value is not None:
            monkeypatch.setenv(name, value.replace("$(REDIS_PASSWORD)", "secret"))
    return Settings()


# --- settings and environment -------------------------------------------------------


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_env_name_of_the_app_is_a_settings_field(variant, rendered):
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    unknown = set(_app_env(rendered[variant.name])) - fields - NOT_SETTINGS
    assert unknown == set()


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_redis_password_helper_is_defined_before_the_url_that_expands_it(variant, rendered):
    env = container(rendered[variant.name].get("Deployment", APP), "app")["env"]
    names = [entry["name"] for entry in env]
    url = env[names.index("INFER_REDIS_URL")]["value"]
    assert "$(REDIS_PASSWORD)" in url
    assert url.endswith("@infer-redis:6379/0")
    # Kubernetes expands only variables defined earlier in the list.
    assert names.index("REDIS_PASSWORD") < names.index("INFER_REDIS_URL")
    uses = [entry for entry in env if "$(REDIS_PASSWORD)" in (entry.get("value") or "")]
    assert [entry["name"] for entry in uses] == ["INFER_REDIS_URL"]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_app_settings_parse_as_the_service_settings(variant, rendered, monkeypatch):
    settings = _settings_from(_app_env(rendered[variant.name]), monkeypatch)
    assert settings.host == "0.0.0.0"
    assert str(settings.models_dir) == "/app/models"
    assert settings.redis_url == "redis://:secret@infer-redis:6379/0"
    assert settings.workers >= 1


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_gunicorn_workers_fit_the_cpu_limit(variant, rendered, monkeypatch):
    settings = _settings_from(_app_env(rendered[variant.name]), monkeypatch)
    app = container(rendered[variant.name].get("Deployment", APP), "app")
    assert settings.workers <= _cpu(app["resources"]["limits"]["cpu"])


def _cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_app_listens_on_the_port_its_service_and_probes_use(variant, rendered, monkeypatch):
    found = rendered[variant.name]
    settings = _settings_from(_app_env(found), monkeypatch)
    app = container(found.get("Deployment", APP), "app")
    assert port_number(app, "http") == settings.port
    service_port = found.get("Service", APP)["spec"]["ports"][0]
    assert service_port["targetPort"] == "http"


# --- selectors, ports and references ----------------------------------------------


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_service_selects_the_pods_of_exactly_one_workload(variant, rendered):
    found = rendered[variant.name]
    for service in found.of_kind("Service"):
        selector = service["spec"]["selector"]
        matched = [w for w in found.workloads() if selects(selector, pod_labels(w))]
        assert len(matched) == 1, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            names = {
                p.get("name")
                for c in matched[0]["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            }
            assert port["targetPort"] in names, f"{service['metadata']['name']}: {port}"


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_workload_selector_matches_its_own_pod_template(variant, rendered):
    for workload in rendered[variant.name].workloads():
        assert selects(workload["spec"]["selector"]["matchLabels"], pod_labels(workload))


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_configmap_a_pod_uses_is_rendered(variant, rendered):
    found = rendered[variant.name]
    names = {cm["metadata"]["name"] for cm in found.of_kind("ConfigMap")}
    for workload in found.workloads():
        spec = workload["spec"]["template"]["spec"]
        used = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        used += [
            source["configMapRef"]["name"]
            for c in spec["containers"]
            for source in c.get("envFrom", [])
        ]
        # Generated names carry a content hash, so a change rolls the pods.
        for name in used:
            assert name in names
            assert re.fullmatch(r".+-[a-z0-9]{10}", name), name


def test_every_secret_key_a_pod_reads_is_in_the_example_secret(rendered):
    example = yaml.safe_load((K8S / "examples" / "app-secret.example.yaml").read_text())
    keys = set(example["stringData"])
    for _, c in rendered["prod"].containers():
        for entry in c.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == example["metadata"]["name"]
                assert ref["key"] in keys


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_probe_uses_a_named_port_of_its_container(variant, rendered):
    for _, c in rendered[variant.name].containers():
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = c[kind]
            handler = probe.get("httpGet") or probe.get("tcpSocket")
            if handler is not None:
                port_number(c, handler["port"])


# --- NGINX ---------------------------------------------------------------------------


def _nginx_conf(found: Manifests) -> str:
    return found.get("ConfigMap", "infer-nginx-config")["data"]["nginx.conf"]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_nginx_upstream_points_at_the_app_service(variant, rendered):
    found = rendered[variant.name]
    upstream = re.search(r"upstream infer_app \{(.*?)\n    \}", _nginx_conf(found), re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server (\S+)", upstream.group(1), re.M)
    service = found.get("Service", APP)
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert servers == [f"{service['metadata']['name']}:{http['port']}"]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_nginx_listens_where_its_container_service_and_exporter_expect(variant, rendered):
    found = rendered[variant.name]
    conf = _nginx_conf(found)
    listens = re.findall(r"^\s*listen (\S+);", conf, re.M)
    nginx = found.get("Deployment", "infer-nginx")
    public = port_number(container(nginx, "nginx"), "http")
    assert listens[0] in {str(public), f"0.0.0.0:{public}"}
    # stub_status stays on the pod's loopback, where the exporter sidecar reads it.
    assert listens[1].startswith("127.0.0.1:")
    exporter_args = " ".join(container(nginx, "exporter")["args"])
    assert f"http://{listens[1]}/stub_status" in exporter_args
    assert "location = /nginx-healthz" in conf
    assert container(nginx, "nginx")["livenessProbe"]["httpGet"]["path"] == "/nginx-healthz"
    command = container(nginx, "nginx")["command"]
    mount = next(m for m in container(nginx, "nginx")["volumeMounts"] if m["name"] == "config")
    assert command[command.index("-c") + 1] == f"{mount['mountPath']}/nginx.conf"


# --- rollout, disruption, shutdown -----------------------------------------------------


def _min_replicas(found: Manifests) -> int:
    if found.has("HorizontalPodAutoscaler", APP):
        return found.get("HorizontalPodAutoscaler", APP)["spec"]["minReplicas"]
    return found.get("Deployment", APP)["spec"]["replicas"]


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_pdb_selects_the_pods_of_exactly_one_workload(variant, rendered):
    found = rendered[variant.name]
    budgets = found.of_kind("PodDisruptionBudget")
    assert {pdb["metadata"]["name"] for pdb in budgets} == {APP, "infer-nginx"}
    for pdb in budgets:
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [w for w in found.workloads() if selects(selector, pod_labels(w))]
        assert [w["metadata"]["name"] for w in matched] == [pdb["metadata"]["name"]]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_pdb_leaves_a_pod_disruptable_at_the_minimum_replica_count(variant, rendered):
    found = rendered[variant.name]
    pdb = found.get("PodDisruptionBudget", APP)["spec"]
    assert selects(pdb["selector"]["matchLabels"], pod_labels(found.get("Deployment", APP)))
    lowest = _min_replicas(found)
    if "minAvailable" in pdb:
        assert lowest - pdb["minAvailable"] >= 1
    else:
        assert pdb["maxUnavailable"] >= 1


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_termination_grace_outlasts_the_prestop_pause_and_gunicorns_graceful_timeout(
    variant, rendered, monkeypatch
):
    found = rendered[variant.name]
    settings = _settings_from(_app_env(found), monkeypatch)
    deployment = found.get("Deployment", APP)
    pause = container(deployment, "app")["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pause >= 3
    assert grace > pause + settings.graceful_timeout


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_rollouts_never_lower_capacity_and_spread_over_nodes(variant, rendered):
    for name in (APP, "infer-nginx"):
        spec = rendered[variant.name].get("Deployment", name)["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        keys = {c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]}
        assert "kubernetes.io/hostname" in keys


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_app_scratch_space_and_metrics_dir_are_memory_backed(variant, rendered):
    deployment = rendered[variant.name].get("Deployment", APP)
    app = container(deployment, "app")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in app["volumeMounts"]}
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"
    env = {entry["name"]: entry.get("value") for entry in app["env"]}
    metrics_dir = env["PROMETHEUS_MULTIPROC_DIR"]
    # Inside /tmp but not a mount point itself: Gunicorn's config wipes and recreates it.
    assert metrics_dir.startswith("/tmp/") and metrics_dir not in mounts


# --- every container ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_container_has_resources_probes_and_a_locked_down_security_context(variant, rendered):
    for workload, c in rendered[variant.name].containers():
        where = f"{workload['metadata']['name']}/{c['name']}"
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        security = c.get("securityContext", {})
        for side in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][side]), where
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in c, f"{where} lacks {probe}"
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        assert user is not None and user >= 10000, where
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert security.get("privileged", False) is False, where
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile"))
        assert seccomp == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_the_namespace_enforces_the_restricted_pod_security_standard(variant, rendered):
    namespace = rendered[variant.name].of_kind("Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in rendered[variant.name].objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("variant", ALL, ids=_ids)
def test_every_object_carries_the_recommended_labels(variant, rendered):
    for obj in rendered[variant.name].objects:
        labels = obj["metadata"].get("labels", {})
        for key in ("part-of", "managed-by", "instance"):
            assert f"app.kubernetes.io/{key}" in labels, f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] != "Namespace":
            assert labels.get("app.kubernetes.io/name") == "infer" or obj["kind"] == "ConfigMap"


# --- probes of the app ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_liveness_and_startup_ask_healthz_and_readiness_asks_readyz(variant, rendered):
    app = container(rendered[variant.name].get("Deployment", APP), "app")
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["startupProbe"]["failureThreshold"] * app["startupProbe"]["periodSeconds"] >= 30


# --- overlays --------------------------------------------------------------------------------


def test_dev_runs_one_small_replica_without_autoscaling(rendered):
    dev = rendered["dev"]
    assert not dev.has("HorizontalPodAutoscaler", APP)
    assert dev.get("Deployment", APP)["spec"]["replicas"] == 1
    assert container(dev.get("Deployment", APP), "app")["image"].endswith(":dev")


def test_prod_autoscales_from_three_to_twenty_and_scales_down_slowly(rendered):
    prod = rendered["prod"]
    hpa = prod.get("HorizontalPodAutoscaler", APP)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    # The HPA owns the count: a replicas field would reset it on every apply.
    assert "replicas" not in prod.get("Deployment", APP)["spec"]
    pdb = prod.get("PodDisruptionBudget", APP)["spec"]
    assert pdb["minAvailable"] == 2
    assert "maxUnavailable" not in pdb


def test_prod_pins_every_image_to_a_release_tag(rendered):
    for _, c in rendered["prod"].containers():
        name, _, tag = c["image"].rpartition(":")
        assert name and tag and tag != "latest", c["image"]
    app = container(rendered["prod"].get("Deployment", APP), "app")
    assert re.fullmatch(r".+/infer-stack:\d+\.\d+\.\d+", app["image"])


# --- network policies --------------------------------------------------------------------


def _peers(policy) -> list[dict]:
    return [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_redis_accepts_only_the_app_pods(variant, rendered):
    found = rendered[variant.name]
    policy = found.get("NetworkPolicy", "infer-redis")
    assert selects(
        policy["spec"]["podSelector"]["matchLabels"],
        pod_labels(found.get("Deployment", "infer-redis")),
    )
    peers = _peers(policy)
    assert len(peers) == 1 and set(peers[0]) == {"podSelector"}
    assert selects(peers[0]["podSelector"]["matchLabels"], pod_labels(found.get("Deployment", APP)))
    assert policy["spec"]["policyTypes"] == ["Ingress"]


@pytest.mark.parametrize("variant", BARE, ids=_ids)
def test_the_app_accepts_only_nginx_and_prometheus(variant, rendered):
    found = rendered[variant.name]
    policy = found.get("NetworkPolicy", APP)
    assert selects(
        policy["spec"]["podSelector"]["matchLabels"], pod_labels(found.get("Deployment", APP))
    )
    peers = _peers(policy)
    assert len(peers) == 2
    nginx, prometheus = peers
    assert selects(
        nginx["podSelector"]["matchLabels"], pod_labels(found.get("Deployment", "infer-nginx"))
    )
    assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert "namespaceSelector" in prometheus
    assert all(len(rule.get("from", [])) == 1 for rule in policy["spec"]["ingress"])


# --- optional components -------------------------------------------------------------------


@pytest.mark.parametrize("variant", [v for v in ALL if "monitoring" in v.components], ids=_ids)
def test_podmonitors_scrape_a_named_port_of_the_pods_they_select(variant, rendered):
    found = rendered[variant.name]
    jobs = {}
    for monitor in found.of_kind("PodMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        (workload,) = [w for w in found.workloads() if selects(selector, pod_labels(w))]
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics"
            ports = [
                p.get("name")
                for c in workload["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            ]
            assert endpoint["port"] in ports
            jobs[workload["metadata"]["name"]] = endpoint["relabelings"][0]["replacement"]
    # The job names the recording rules and dashboards query (docs/architecture.md).
    assert jobs == {APP: "infer", "infer-nginx": "nginx"}
    assert found.of_kind("PrometheusRule")


@pytest.mark.parametrize("variant", [v for v in ALL if "gateway" in v.components], ids=_ids)
def test_the_httproute_sends_traffic_to_the_nginx_service(variant, rendered):
    found = rendered[variant.name]
    (route,) = found.of_kind("HTTPRoute")
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    service = found.get("Service", backend["name"])
    assert backend["name"] == "infer-nginx"
    assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]


def test_third_party_images_are_the_ones_compose_runs(rendered):
    compose = yaml.safe_load((K8S.parents[1] / "docker-compose.yml").read_text())
    compose_images = {s["image"] for s in compose["services"].values() if "image" in s}
    others = [
        c["image"] for _, c in rendered["prod"].containers() if "infer-stack" not in c["image"]
    ]
    assert len(others) == 3
    assert set(others) <= compose_images


def test_the_app_runs_the_images_command_as_the_images_user(rendered):
    lines = (K8S.parents[1] / "Dockerfile").read_text().splitlines()
    command = json.loads(next(line for line in lines if line.startswith("CMD "))[4:])
    user, _, group = (
        next(line for line in lines if line.startswith("USER ")).split()[1].partition(":")
    )
    deployment = rendered["prod"].get("Deployment", APP)
    assert container(deployment, "app")["command"] == command
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (int(user), int(group))
