"""Prediction routes: validate, hand to inference, answer in request order."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import get_type_hints

from flask import Flask, Request, Response, current_app, g, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import ValidationError

from service.api.bodies import validated_body
from service.api.models import lookup
from service.api.schemas import (
    COMMON_ERRORS,
    ErrorResponse,
    ModelPath,
    PredictRequest,
    PredictResponse,
    VersionPath,
)
from service.errors import ValidationFailed
from service.models.base import InputError, Model

predict = APIBlueprint("predict", __name__, url_prefix="/v1", abp_tags=[Tag(name="predict")],
                       abp_responses=COMMON_ERRORS)

_RESPONSES = {200: PredictResponse, 404: ErrorResponse, 422: ErrorResponse,
              503: ErrorResponse}


@predict.post("/models/<name>/predict", responses=_RESPONSES)
def predict_default(path: ModelPath, body: PredictRequest):
    """Predict with the model's default version."""
    return _answer(path.name, None, body)


@predict.post("/models/<name>/versions/<version>/predict", responses=_RESPONSES)
def predict_version(path: VersionPath, body: PredictRequest):
    """Predict with one version of the model."""
    return _answer(path.name, path.version, body)


def _answer(name: str, version: str | None, body: PredictRequest):
    # each proxy resolved once: a read through one costs ~9,000 CPU instructions
    req, app = request._get_current_object(), current_app._get_current_object()
    state = app.extensions["infer"]
    model = lookup(name, version, state.registry)
    limit = state.settings.max_instances
    if len(body.instances) > limit:
        raise ValidationFailed(
            f"{len(body.instances)} instances sent, at most {limit} allowed",
            details=[{"loc": ["instances"], "msg": f"at most {limit} instances",
                      "type": "too_long"}])
    try:
        instances = model.input_spec.canonical(body.instances)
    except InputError as exc:
        raise ValidationFailed(str(exc), details=exc.details) from None
    outcome = state.inference.predict(model, instances, use_cache=cache_allowed(req))
    response = app.json.response({"model": model.name, "version": model.version,
                                  "predictions": [p.as_dict() for p in outcome.predictions]})
    mark(response, model, len(instances), outcome.cache)
    if state.repeats is not None:
        state.repeats.keep(model, outcome.predictions, response)
    return response


# Every predict route: Flask endpoint name -> view.
_VIEWS = {f"{predict.name}.{view.__name__}": view for view in (predict_default, predict_version)}
PREDICT_ENDPOINTS = frozenset(_VIEWS)


def serve_validated(app: Flask) -> None:
    """Serve the predict routes with views that validate their own path and body.

    Call after ``app.register_api(predict)``. flask-openapi3 documents the routes from
    the views' annotations and registers a wrapper per route that validates each
    request; this puts ``_validating(view)`` in its place. The models are the same and a
    failure is the same 422. Why: per prediction, the wrapper read ``request`` and
    ``current_app`` through their proxies, iterated the path model and passed
    pydantic seven keyword options per model (~45,000 CPU instructions of ~1,020,000
    for an uncached iris request, counted with ``make bench-instructions``). And it took
    a body that is a JSON string for JSON text and parsed it again, so a request sent
    as a string was predicted; here a body that is not an object is a 422.
    (flask-openapi3's response validation, off in this app, would be bypassed too.)
    """
    for endpoint, view in _VIEWS.items():
        if endpoint not in app.view_functions:
            raise RuntimeError(f"register the predict routes first: no {endpoint}")
        app.view_functions[endpoint] = _validating(view)


def _validating(view: Callable) -> Callable:
    hints = get_type_hints(view)
    # the models' own validators: ``model_validate`` passes seven keyword options to one
    # on every call, which doubles its cost for these small inputs
    check_path = hints["path"].__pydantic_validator__.validate_python
    body_validator = hints["body"].__pydantic_validator__

    @functools.wraps(view)
    def validated(**view_args: str) -> Response:
        try:
            path = check_path(view_args)
            body = validated_body(request._get_current_object(), body_validator)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None
        return view(path, body)

    return validated


def cache_allowed(req: Request) -> bool:
    """False when the caller asked for a fresh answer (``Cache-Control: no-cache``)."""
    return "no-cache" not in req.environ.get("HTTP_CACHE_CONTROL", "").lower()


def mark(response: Response, model: Model, instances: int, cache: str) -> None:
    """What every predict answer carries: ``X-Cache`` and its request-log fields."""
    response.headers["X-Cache"] = cache
    g._get_current_object().log_fields = {"model": model.name, "version": model.version,
                                          "instances": instances, "cache": cache}
