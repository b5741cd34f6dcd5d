"""Fixtures shared by every layer: trained models and a fresh app per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import create_app
from service.settings import Settings
from service.train import has_models
from service.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real trained models (``make test`` trains them; trained here when missing)."""
    path = Path(os.environ.get("INFER_MODELS_DIR", ROOT / "models")).resolve()
    if not has_models(path):
        train_main(["--models-dir", str(path)])
    return path


@pytest.fixture
def make_app(models_dir):
    """Build an app from settings overrides: ``make_app(api_keys=["k"])``."""

    def build(**overrides):
        return create_app(Settings(**{"models_dir": models_dir, **overrides}))

    return build


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
