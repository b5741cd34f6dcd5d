"""Rendered Kubernetes objects, and the questions the tests ask of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Object = dict[str, Any]

# Kinds that carry a pod template at spec.template.
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


@dataclass(frozen=True)
class Manifests:
    """The objects of one rendered variant."""

    objects: tuple[Object, ...]

    def of_kind(self, kind: str) -> list[Object]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> Object:
        """The one ``kind`` named ``name`` (ConfigMaps match with their hash suffix)."""
        found = [
            obj
            for obj in self.of_kind(kind)
            if obj["metadata"]["name"] == name
            or (kind == "ConfigMap" and obj["metadata"]["name"].rsplit("-", 1)[0] == name)
        ]
        if len(found) != 1:
            raise LookupError(f"expected one {kind} {name}, found {len(found)}")
        return found[0]

    def has(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
        except LookupError:
            return False
        return True

    def workloads(self) -> list[Object]:
        return [obj for obj in self.objects if obj["kind"] in WORKLOADS]

    def containers(self) -> Iterator[tuple[Object, Object]]:
        """(workload, container) for every container, init containers included."""
        for workload in self.workloads():
            spec = workload["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield workload, container


def container(workload: Object, name: str) -> Object:
    """The container ``name`` of ``workload``."""
    for candidate in workload["spec"]["template"]["spec"]["containers"]:
        if candidate["name"] == name:
            return candidate
    raise LookupError(f"{workload['metadata']['name']} has no container {name}")


def port_number(container: Object, name: str) -> int:
    """The containerPort called ``name``."""
    for port in container.get("ports", []):
        if port.get("name") == name:
            return port["containerPort"]
    raise LookupError(f"container {container['name']} has no port {name}")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """True when every ``key: value`` of a matchLabels selector is among ``labels``."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def pod_labels(workload: Object) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels", {})
