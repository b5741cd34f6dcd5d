"""Liveness and readiness probes."""

from __future__ import annotations

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag

from service.api.schemas import COMMON_ERRORS, ErrorResponse, Health, Ready
from service.errors import NotReady
from service.paths import HEALTHZ_PATH, READYZ_PATH

health = APIBlueprint("health", __name__, abp_tags=[Tag(name="health")],
                      abp_responses=COMMON_ERRORS)


@health.get(HEALTHZ_PATH, responses={200: Health})
def healthz():
    """Liveness: the process answers."""
    return {"status": "ok"}


@health.get(READYZ_PATH, responses={200: Ready, 503: ErrorResponse})
def readyz():
    """Readiness: every model is loaded and the worker is not draining."""
    state = current_app.extensions["infer"]
    registry = state.registry
    if state.draining:
        raise NotReady("the worker is shutting down", details=["draining"])
    if not registry.ready:
        raise NotReady("not every model is loaded", details=registry.problems)
    return {"status": "ready",
            "models": {name: registry.default_version(name) for name in registry.names()}}
