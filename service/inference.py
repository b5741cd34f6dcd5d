"""One request's predictions: cache lookups first, the model only for the misses.

A view hands over validated, canonical instances; this module answers them in
request order and says how the cache served them (``X-Cache``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.models.base import Model, Prediction


class PredictionCache(Protocol):
    """What inference needs of a cache (service.cache.ResponseCache provides it)."""

    def keys(self, model: Model, instances: Sequence[Any]) -> list[str]: ...

    def get_many(self, model: Model, keys: Sequence[str]) -> list[Prediction | None]: ...

    def set_many(self, items: Sequence[tuple[str, Prediction]]) -> None: ...


class InferenceMetrics(Protocol):
    """What inference reports (service.metrics.Metrics provides it)."""

    def answered(self, model: Model, predictions: list[Prediction]) -> None: ...


# How a batch of misses reaches the model: the micro-batcher in the app, or directly.
Runner = Callable[[Model, Sequence[Any]], list[Prediction]]


def predict_directly(model: Model, instances: Sequence[Any]) -> list[Prediction]:
    return model.predict(instances)


@dataclass(frozen=True)
class Outcome:
    predictions: list[Prediction]
    cache: str  # hit | miss | partial | bypass


class Inference:
    """Answers canonical instances for a model, through the cache when there is one."""

    def __init__(self, cache: PredictionCache | None = None, runner: Runner | None = None,
                 metrics: InferenceMetrics | None = None):
        self._cache = cache
        self._run = runner or predict_directly
        self._metrics = metrics

    def predict(self, model: Model, instances: Sequence[Any], *, use_cache: bool = True) -> Outcome:
        outcome = self._answer(model, instances, use_cache)
        if self._metrics is not None:
            self._metrics.answered(model, outcome.predictions)
        return outcome

    def _answer(self, model: Model, instances: Sequence[Any], use_cache: bool) -> Outcome:
        if self._cache is None or not use_cache:
            return Outcome(self._run(model, instances), "bypass")
        keys = self._cache.keys(model, instances)
        found = self._cache.get_many(model, keys)
        missing = [i for i, hit in enumerate(found) if hit is None]
        if missing:
            fresh = self._run(model, [instances[i] for i in missing])
            for index, prediction in zip(missing, fresh, strict=True):
                found[index] = prediction
            self._cache.set_many([(keys[i], found[i]) for i in missing])
        status = ("hit" if not missing else "miss" if len(missing) == len(instances)
                  else "partial")
        return Outcome(found, status)  # type: ignore[arg-type]
