"""Prediction routes: validate, hand to inference, answer in request order."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import get_type_hints

from flask import Request, Response, current_app, g, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import ValidationError

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


def validated_here(view: Callable) -> Callable:
    """Validate ``view``'s ``path`` and ``body`` here, not in flask-openapi3's wrapper.

    flask-openapi3 still documents the route from the view's annotations; at request
    time it calls the view with the URL's arguments (the flag below is its own, set by
    its ``validate_request``). The models are the same and a failure is the same 422.
    Why: per prediction, its wrapper read ``request`` and ``current_app`` through their
    proxies and iterated the path model, ~30,000 CPU instructions of ~1,020,000 for an
    uncached iris request (counted with ``make bench-instructions``). And it took a body
    that is a JSON string for JSON text and parsed it again, so ``"{\\"instances\\": ...}"``
    was predicted; here a body that is not an object is a 422.
    """
    hints = get_type_hints(view)
    # the models' own validators: ``model_validate`` passes seven keyword options to one
    # on every call, which doubles its cost for these small inputs
    check_path = hints["path"].__pydantic_validator__.validate_python
    check_body = hints["body"].__pydantic_validator__.validate_python

    @functools.wraps(view)
    def checked(**view_args):
        try:
            path = check_path(view_args)
            # parsed (and cached) by the app's _require_json hook, which 400s broken JSON
            body = check_body(request._get_current_object().get_json())
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None
        return view(path, body)

    checked.__delay_validate_request__ = True  # type: ignore[attr-defined]
    return checked


@predict.post("/models/<name>/predict", responses=_RESPONSES)
@validated_here
def predict_default(path: ModelPath, body: PredictRequest):
    """Predict with the model's default version."""
    return _answer(path.name, None, body)


@predict.post("/models/<name>/versions/<version>/predict", responses=_RESPONSES)
@validated_here
def predict_version(path: VersionPath, body: PredictRequest):
    """Predict with one version of the model."""
    return _answer(path.name, path.version, body)


def _answer(name: str, version: str | None, body: PredictRequest):
    # each proxy resolved once: a read through one costs ~9,000 CPU instructions
    req = request._get_current_object()
    state = current_app._get_current_object().extensions["infer"]
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
    response = jsonify({"model": model.name, "version": model.version,
                        "predictions": [p.as_dict() for p in outcome.predictions]})
    mark(response, model, len(instances), outcome.cache)
    if state.repeats is not None:
        state.repeats.keep(model, outcome.predictions, response)
    return response


# Every predict route, by Flask endpoint name.
PREDICT_ENDPOINTS = frozenset(f"{predict.name}.{view.__name__}"
                              for view in (predict_default, predict_version))


def cache_allowed(req: Request) -> bool:
    """False when the caller asked for a fresh answer (``Cache-Control: no-cache``)."""
    return "no-cache" not in req.environ.get("HTTP_CACHE_CONTROL", "").lower()


def mark(response: Response, model: Model, instances: int, cache: str) -> None:
    """What every predict answer carries: ``X-Cache`` and its request-log fields."""
    response.headers["X-Cache"] = cache
    g.log_fields = {"model": model.name, "version": model.version,
                    "instances": instances, "cache": cache}
