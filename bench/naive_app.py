"""The naive baseline the benchmark compares the stack with.

What many model-serving examples do: one Flask route that predicts each request on
its own, under Gunicorn's sync workers, with no cache and no batching. It loads the
same trained artifacts through the service's registry and answers in the same JSON
shape, so the benchmark's workloads run unchanged against it. Validation is the
model's own input spec, so both sides validate alike; predictions come from the
estimator's ``predict_proba``, not the service's lean scorers.

    gunicorn -w 5 -k sync 'bench.naive_app:create_app("models")'
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, jsonify, request

from service.models.registry import Registry


def create_app(models_dir: str | Path = "models") -> Flask:
    registry = Registry.load(Path(models_dir), lean=False)
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/v1/models/<name>/predict")
    def predict(name: str):
        try:
            model = registry.get(name)
        except LookupError:  # the registry's UnknownModel
            return _error(404, "not_found", f"no model {name!r}")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
            return _error(422, "invalid_input", 'expected {"instances": [...]}')
        try:
            rows = model.input_spec.canonical(body["instances"])
        except ValueError as exc:
            return _error(422, "invalid_input", str(exc))
        predictions = model.predict(rows)
        return {
            "model": name,
            "version": model.version,
            "predictions": [_as_dict(p) for p in predictions],
        }

    return app


def _as_dict(prediction) -> dict:
    return prediction.as_dict() if hasattr(prediction, "as_dict") else dict(prediction)


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status
