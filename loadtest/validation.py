"""Checks of one answer, as pure functions: each returns a problem or ``None``.

The Locust users call them inside ``catch_response`` blocks, so a wrong answer
counts as a failure even when its status is 200.
"""

from __future__ import annotations

import math

LABELS = {
    "iris": frozenset({"setosa", "versicolor", "virginica"}),
    "sentiment": frozenset({"negative", "neutral", "positive"}),
}
CACHE_STATES = frozenset({"hit", "miss", "partial", "bypass"})
# An answer for inputs nobody sent before cannot have come from the cache; if it did,
# the cache key ignores the body (the `@cache.cached()` on a POST route mistake).
FRESH_CACHE_STATES = frozenset({"miss", "bypass"})
PROBABILITY_TOLERANCE = 1e-3


def prediction_problem(
    model: str,
    instances: int,
    status: int,
    body: object,
    cache_state: str | None,
    fresh: bool = False,
) -> str | None:
    """What is wrong with a predict answer for ``instances`` inputs, if anything.

    ``fresh`` says the inputs were unique, so the answer must not be a cache hit.
    """
    if status != 200:
        return f"status {status}, wanted 200"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if body.get("model") != model:
        return f"model {body.get('model')!r}, wanted {model!r}"
    if not isinstance(body.get("version"), str) or not body["version"]:
        return "no version"
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != instances:
        got = len(predictions) if isinstance(predictions, list) else "no"
        return f"{got} predictions for {instances} instances"
    for prediction in predictions:
        problem = _label_problem(LABELS[model], prediction)
        if problem:
            return problem
    allowed = FRESH_CACHE_STATES if fresh else CACHE_STATES
    if cache_state not in allowed:
        return f"X-Cache {cache_state!r}, wanted one of {sorted(allowed)}"
    return None


def _label_problem(labels: frozenset[str], prediction: object) -> str | None:
    if not isinstance(prediction, dict):
        return "prediction is not an object"
    label, scores = prediction.get("label"), prediction.get("scores")
    if label not in labels:
        return f"label {label!r} not in {sorted(labels)}"
    if not isinstance(scores, dict) or set(scores) != labels:
        return f"scores keys {sorted(scores) if isinstance(scores, dict) else scores!r}"
    values = list(scores.values())
    if not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in values):
        return f"scores out of [0, 1]: {scores}"
    if not math.isclose(sum(values), 1.0, abs_tol=PROBABILITY_TOLERANCE):
        return f"scores sum to {sum(values):.6f}"
    if scores[label] < max(values) - PROBABILITY_TOLERANCE:
        return f"label {label!r} is not the most probable in {scores}"
    return None


def error_problem(status: int, body: object, statuses: frozenset[int]) -> str | None:
    """What is wrong with the answer to a bad request, if anything.

    Right means: a status from ``statuses`` and the error shape
    ``{"error": {"code": str, "message": str, ...}}``.
    """
    if status not in statuses:
        return f"status {status}, wanted one of {_ranges(statuses)}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "no error object in the body"
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or not error[key]:
            return f"error has no {key}"
    return None


def _ranges(statuses: frozenset[int]) -> str:
    low, high = min(statuses), max(statuses)
    if len(statuses) == high - low + 1 and len(statuses) > 2:
        return f"{low}-{high}"
    return ", ".join(str(s) for s in sorted(statuses))
