"""The Deployment's probes and port, checked against the service itself: the probe
paths are real routes that answer 200 when the app is ready, and Gunicorn binds the
port the container declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.k8s.build import ROOT, Variant, manifests
from deploy.k8s.manifests import container, port_number
from service import create_app
from service.settings import ENV_PREFIX, Settings
from service.train import has_models


@pytest.fixture(scope="module")
def app_container() -> dict:
    return container(manifests(Variant("prod")).get("Deployment", "infer-app"), "app")


@pytest.fixture(scope="module")
def app_env() -> dict[str, str]:
    found = manifests(Variant("prod"))
    app = container(found.get("Deployment", "infer-app"), "app")
    env = dict(found.get("ConfigMap", app["envFrom"][0]["configMapRef"]["name"])["data"])
    env.update({e["name"]: e["value"] for e in app["env"] if "value" in e})
    return env


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """The models `make test` trained (INFER_MODELS_DIR), or freshly trained ones (~1 min)."""
    given = Path(os.environ.get("INFER_MODELS_DIR", ROOT / "models"))
    if has_models(given):
        return given
    target = tmp_path_factory.mktemp("models")
    subprocess.run(
        [sys.executable, "-m", "service.train", "--models-dir", str(target)],
        cwd=ROOT,
        check=True,
        timeout=600,
        capture_output=True,
    )
    return target


def _probe_paths(app_container: dict) -> dict[str, str]:
    return {
        kind: app_container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }


def test_every_probe_path_answers_200_when_the_models_are_loaded(app_container, models_dir):
    client = create_app(Settings(models_dir=models_dir)).test_client()
    for kind, path in _probe_paths(app_container).items():
        response = client.get(path)
        assert response.status_code == 200, f"{kind} {path}: {response.get_data(as_text=True)}"


def test_readiness_fails_but_liveness_holds_while_no_model_is_loaded(app_container, tmp_path):
    client = create_app(Settings(models_dir=tmp_path)).test_client()
    paths = _probe_paths(app_container)
    assert client.get(paths["livenessProbe"]).status_code == 200
    assert client.get(paths["readinessProbe"]).status_code == 503


def test_gunicorn_binds_the_port_the_container_declares(app_container, app_env):
    # In a child process: the config monkey-patches with gevent on import.
    script = (
        "import json, runpy; c = runpy.run_path('service/gunicorn_conf.py'); "
        "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'graceful_timeout')}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update({k: v.replace("$(REDIS_PASSWORD)", "secret") for k, v in app_env.items()})
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config = json.loads(result.stdout.strip().splitlines()[-1])
    host, _, port = config["bind"].rpartition(":")
    assert host == "0.0.0.0"
    assert int(port) == port_number(app_container, "http")
    assert config["graceful_timeout"] == int(app_env["INFER_GRACEFUL_TIMEOUT"])
    assert config["workers"] == int(app_env["INFER_WORKERS"])
