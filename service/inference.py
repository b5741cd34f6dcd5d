"""One request's predictions: the worker's local tier first, then one shared batch.

A view hands over validated, canonical instances; this module answers them in
request order and says how the cache served them (``X-Cache``).

What the worker's local tier holds is answered at once. The rest go to the runner
(in the app, the micro-batcher) as ``Lookup``s, and the runner hands the lookups of
concurrent requests to one model version to a ``Resolver`` together: one Redis read
for all their keys, one model call (made while Redis answers, as long as Redis rarely
has the answers), one write of the new answers. A request that misses the local tier
so waits for one hand-off (its batch), and a worker sends Redis one read per batch,
not one per request.
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

    def start_read(self, model: Model, keys: Sequence[str]
                   ) -> Callable[[], list[Prediction | None]]: ...

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
    cached: bool  # the answer came from Redis (it may also have been predicted ahead)


# How lookups reach a resolver: the micro-batcher in the app, or a resolver directly.
Runner = Callable[[Model, Sequence[Lookup]], list[Resolved]]


# Each Redis read weighs the earlier ones down by this factor: the share of keys Redis
# answered is counted over roughly a model's last ten reads.
_HISTORY_DECAY = 0.9


class Resolver:
    """Answers a batch of lookups: one cache read and one model call.

    The read for the keyed lookups is sent first. While recent reads of the model found
    answers for fewer than ``predict_ahead_below`` of their keys, the model predicts the
    whole batch during Redis's round trip, and what Redis did have is answered from Redis
    (its prediction was wasted work, rare by that rule). Otherwise the resolver waits
    for the read and predicts only what Redis lacks; ``predict_ahead_below=0`` always
    does. Either way a request that misses its worker's memory waits for one hand-off,
    and Redis hits are answered from Redis (``cached``).

    Lookups without a key are predicted and not written. Fresh answers to keyed
    lookups go to ``cache.set_many``. ``metrics.batch`` sees each model call: the
    instances in it and its seconds.
    """

    def __init__(self, cache: PredictionCache | None = None,
                 metrics: InferenceMetrics | None = None, predict_ahead_below: float = 0.0):
        self._cache = cache
        self._metrics = metrics
        self._ahead_below = predict_ahead_below
        # (model name, version) -> decayed (keys Redis answered, keys asked)
        self._history: dict[tuple[str, str], tuple[float, float]] = {}

    def __call__(self, model: Model, lookups: Sequence[Lookup]) -> list[Resolved]:
        keyed = {i: lookup.key for i, lookup in enumerate(lookups) if lookup.key is not None}
        if not keyed or self._cache is None:
            return [Resolved(p, False) for p in self._predict(model, lookups)]
        finish_read = self._cache.start_read(model, list(keyed.values()))
        ahead = None
        try:
            if self._predicts_ahead(model):
                ahead = self._predict(model, lookups)
        finally:
            stored = finish_read()  # also after a failed model call: it frees the read
        answers = {index: Resolved(prediction, True)
                   for index, prediction in zip(keyed, stored, strict=True)
                   if prediction is not None}
        if self._ahead_below > 0:  # the history only ever decides predicting ahead
            self._remember(model, len(answers), len(keyed))
        todo = [i for i in range(len(lookups)) if i not in answers]
        fresh = ([ahead[i] for i in todo] if ahead is not None
                 else self._predict(model, [lookups[i] for i in todo]))
        writes = []
        for index, prediction in zip(todo, fresh, strict=True):
            answers[index] = Resolved(prediction, False)
            if index in keyed:
                writes.append((keyed[index], prediction))
        if writes:
            self._cache.set_many(writes)
        return [answers[i] for i in range(len(lookups))]

    def _predict(self, model: Model, lookups: Sequence[Lookup]) -> list[Prediction]:
        if not lookups:
            return []
        started = time.perf_counter()
        predictions = model.predict([lookup.instance for lookup in lookups])
        if self._metrics is not None:
            self._metrics.batch(model, len(lookups), time.perf_counter() - started)
        return predictions

    def _predicts_ahead(self, model: Model) -> bool:
        found, asked = self._history.get((model.name, model.version), (0.0, 0.0))
        return (found / asked if asked else 0.0) < self._ahead_below

    def _remember(self, model: Model, found: int, asked: int) -> None:
        key = (model.name, model.version)
        old_found, old_asked = self._history.get(key, (0.0, 0.0))
        self._history[key] = (old_found * _HISTORY_DECAY + found,
                              old_asked * _HISTORY_DECAY + asked)


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
