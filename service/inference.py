"""One request's predictions: the worker's local tier first, then one shared batch.

A view hands over validated, canonical instances; this module answers them in
request order and says how the cache served them (``X-Cache``).

What the worker's local tier holds is answered at once. The rest go to the runner
(in the app, the micro-batcher) as ``Lookup``s, and the runner hands the lookups of
concurrent requests to one model version to a ``Resolver`` together: one Redis read
for all their keys, one model call for what Redis lacks, one write of the new
answers. A request that misses the local tier so waits for one hand-off (its batch),
and a worker sends Redis one read per batch, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from service.models.base import Model, Prediction


class PredictionCache(Protocol):
    """What inference needs of a cache (service.cache.ResponseCache provides it)."""

    def keys(self, model: Model, instances: Sequence[Any]) -> list[str]: ...

    def get_local(self, model: Model, keys: Sequence[str]) -> list[Prediction | None]: ...

    def read(self, model: Model, keys: Sequence[str]) -> list[Prediction | None]: ...

    def set_many(self, items: Sequence[tuple[str, Prediction]]) -> None: ...


class InferenceMetrics(Protocol):
    """What inference reports (service.metrics.Metrics provides it)."""

    def batch(self, model: Model, size: int, seconds: float) -> None: ...

    def answered(self, model: Model, predictions: list[Prediction]) -> None: ...


class Lookup(NamedTuple):
    """One instance to answer; ``key`` None means without the cache (``no-cache``)."""

    instance: Any
    key: str | None


class Resolved(NamedTuple):
    prediction: Prediction
    cached: bool  # read from Redis, not predicted


# How lookups reach a resolver: the micro-batcher in the app, or a resolver directly.
Runner = Callable[[Model, Sequence[Lookup]], list[Resolved]]


class Resolver:
    """Answers a batch of lookups: one cache read, then one model call for the rest.

    Lookups without a key are predicted and not written. Fresh answers to keyed
    lookups go to ``cache.set_many``. ``metrics.batch`` sees each model call: the
    instances in it and its seconds.
    """

    def __init__(self, cache: PredictionCache | None = None,
                 metrics: InferenceMetrics | None = None):
        self._cache = cache
        self._metrics = metrics

    def __call__(self, model: Model, lookups: Sequence[Lookup]) -> list[Resolved]:
        answers: list[Resolved | None] = [None] * len(lookups)
        keyed = [i for i, lookup in enumerate(lookups) if lookup.key is not None]
        if keyed and self._cache is not None:
            stored = self._cache.read(model, [lookups[i].key for i in keyed])  # type: ignore[misc]
            for index, prediction in zip(keyed, stored, strict=True):
                if prediction is not None:
                    answers[index] = Resolved(prediction, True)
        todo = [i for i, answer in enumerate(answers) if answer is None]
        if todo:
            started = time.perf_counter()
            fresh = model.predict([lookups[i].instance for i in todo])
            if self._metrics is not None:
                self._metrics.batch(model, len(todo), time.perf_counter() - started)
            writes = []
            for index, prediction in zip(todo, fresh, strict=True):
                answers[index] = Resolved(prediction, False)
                key = lookups[index].key
                if key is not None:
                    writes.append((key, prediction))
            if writes and self._cache is not None:
                self._cache.set_many(writes)
        return answers  # type: ignore[return-value]


@dataclass(frozen=True)
class Outcome:
    predictions: list[Prediction]
    cache: str  # hit | miss | partial | bypass


class Inference:
    """Answers canonical instances for a model, through the cache when there is one."""

    def __init__(self, cache: PredictionCache | None = None, runner: Runner | None = None,
                 metrics: InferenceMetrics | None = None):
        self._cache = cache
        self._run = runner or Resolver(cache, metrics)
        self._metrics = metrics

    def predict(self, model: Model, instances: Sequence[Any], *, use_cache: bool = True) -> Outcome:
        outcome = self._answer(model, instances, use_cache)
        if self._metrics is not None:
            self._metrics.answered(model, outcome.predictions)
        return outcome

    def _answer(self, model: Model, instances: Sequence[Any], use_cache: bool) -> Outcome:
        if self._cache is None or not use_cache:
            resolved = self._run(model, [Lookup(instance, None) for instance in instances])
            return Outcome([answer.prediction for answer in resolved], "bypass")
        keys = self._cache.keys(model, instances)
        found = self._cache.get_local(model, keys)
        missing = [i for i, hit in enumerate(found) if hit is None]
        predicted = 0
        if missing:
            resolved = self._run(model, [Lookup(instances[i], keys[i]) for i in missing])
            for index, answer in zip(missing, resolved, strict=True):
                found[index] = answer.prediction
                predicted += not answer.cached
        status = ("hit" if not predicted else "miss" if predicted == len(instances)
                  else "partial")
        return Outcome(found, status)  # type: ignore[arg-type]
