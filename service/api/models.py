"""Model listing and metadata."""

from __future__ import annotations

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag

from service.api.schemas import (
    COMMON_ERRORS,
    ErrorResponse,
    ModelInfo,
    ModelList,
    ModelPath,
    VersionPath,
)
from service.errors import NotFound
from service.models.base import Model
from service.models.registry import Registry, UnknownModel

models = APIBlueprint("models", __name__, url_prefix="/v1", abp_tags=[Tag(name="models")],
                      abp_responses=COMMON_ERRORS)


def _registry() -> Registry:
    return current_app.extensions["infer"].registry


def lookup(name: str, version: str | None = None, registry: Registry | None = None) -> Model:
    """The model, or a 404 in the error shape (from the app's registry unless given)."""
    try:
        return (_registry() if registry is None else registry).get(name, version)
    except UnknownModel as exc:
        raise NotFound(str(exc)) from None


@models.get("/models", responses={200: ModelList})
def list_models():
    """Every loaded model with its versions and default version."""
    registry = _registry()
    return {"models": [
        {"name": name, "versions": registry.versions(name),
         "default_version": registry.default_version(name)}
        for name in registry.names()]}


@models.get("/models/<name>", responses={200: ModelInfo, 404: ErrorResponse})
def model_info(path: ModelPath):
    """Metadata of a model's default version."""
    return _describe(lookup(path.name))


@models.get("/models/<name>/versions/<version>", responses={200: ModelInfo, 404: ErrorResponse})
def version_info(path: VersionPath):
    """Metadata of one version of a model."""
    return _describe(lookup(path.name, path.version))


def _describe(model: Model) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "default": _registry().default_version(model.name) == model.version,
        "labels": list(model.labels),
        "scorer": model.scorer,
        "input_schema": model.input_spec.json_schema(),
        "metadata": model.metadata,
    }
