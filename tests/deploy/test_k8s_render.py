"""Every overlay renders with `kubectl kustomize`, with and without the optional
components, and every built-in object validates strictly against the Kubernetes
schemas of 1.30 and of the newest version kubernetes-validate ships."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from deploy.k8s.build import COMPONENTS, K8S, OVERLAYS, Variant, manifests, variants
from deploy.k8s.manifests import Manifests

OLDEST = "1.30.0"
NEWEST = kubernetes_validate.latest_version()

# Custom resources: no schema ships offline for them (see docs/kubernetes.md);
# test_k8s_consistency.py checks what they point at.
CUSTOM = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gateway",
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Manifests]:
    return {variant.name: manifests(variant) for variant in variants()}


def _strict_errors(objects, version: str) -> list[str]:
    errors = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM:
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: {exc.message}")
    return errors


def test_every_overlay_and_component_combination_is_rendered():
    names = {variant.name for variant in variants()}
    assert len(names) == len(OVERLAYS) * 2 ** len(COMPONENTS)
    assert {"dev", "prod", "dev+monitoring", "prod+monitoring"} <= names


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.name)
def test_a_variant_renders_the_whole_stack(variant: Variant, rendered):
    found = rendered[variant.name]
    for kind, name in [
        ("Namespace", f"infer-{variant.overlay}"),
        ("Deployment", "infer-app"),
        ("Service", "infer-app"),
        ("Deployment", "infer-nginx"),
        ("Service", "infer-nginx"),
        ("Deployment", "infer-redis"),
        ("Service", "infer-redis"),
        ("PodDisruptionBudget", "infer-app"),
        ("NetworkPolicy", "infer-app"),
        ("NetworkPolicy", "infer-redis"),
        ("ConfigMap", "infer-app-settings"),
        ("ConfigMap", "infer-nginx-config"),
    ]:
        assert found.has(kind, name), f"{variant.name} lacks {kind}/{name}"


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.name)
def test_every_builtin_object_validates_strictly(variant: Variant, version: str, rendered):
    assert _strict_errors(rendered[variant.name].objects, version) == []


@pytest.mark.parametrize("variant", variants(), ids=lambda v: v.name)
def test_custom_resources_appear_only_with_their_component(variant: Variant, rendered):
    for obj in rendered[variant.name].objects:
        component = CUSTOM.get((obj["apiVersion"], obj["kind"]))
        if component is not None:
            assert component in variant.components, f"{obj['kind']} without {component}"
    for component in variant.components:
        kinds = [key for key, owner in CUSTOM.items() if owner == component]
        assert any(
            (obj["apiVersion"], obj["kind"]) in kinds for obj in rendered[variant.name].objects
        ), f"component {component} added nothing"


def test_strict_validation_rejects_an_unknown_field(rendered):
    """The validator is not vacuous: a misspelt field fails."""
    deployment = yaml.safe_load(yaml.safe_dump(rendered["prod"].get("Deployment", "infer-app")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    assert _strict_errors([deployment], NEWEST) != []


def test_the_example_secret_validates_and_is_in_no_kustomization():
    example = K8S / "examples" / "app-secret.example.yaml"
    secret = yaml.safe_load(example.read_text())
    for version in (OLDEST, NEWEST):
        kubernetes_validate.validate(secret, version, strict=True)
    assert "EXAMPLE ONLY" in example.read_text()
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "app-secret.example.yaml" not in kustomization.read_text()
