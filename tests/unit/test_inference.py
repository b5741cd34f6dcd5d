"""Inference and its resolver against in-memory cache doubles (unit layer: no Redis here)."""

import threading

import pytest

from service.batching import MicroBatcher
from service.cache import CircuitBreaker, LocalTier, ResponseCache, cache_key
from service.inference import Inference, Lookup, Resolver
from service.metrics import NullMetrics
from service.models.base import Prediction
from service.settings import BatchSettings
from tests.support.doubles import MemoryBackend


class CountingModel:
    name, version = "m", "v1"

    def __init__(self):
        self.batches = []

    def predict(self, batch):
        self.batches.append(list(batch))
        return [Prediction(label=str(x), scores={str(x): 1.0}) for x in batch]


class EventModel(CountingModel):
    """Records its calls in ``events`` (a cache's), so their order against reads shows."""

    def __init__(self, events, fail=False):
        super().__init__()
        self.events, self.fail = events, fail

    def predict(self, batch):
        self.events.append("predict")
        if self.fail:
            raise RuntimeError("boom")
        return super().predict(batch)


class TwoTierCache:
    """A local dict and a "Redis" dict; a read also keeps what it finds locally.
    ``events`` records when a read was sent and when its answer was read."""

    def __init__(self):
        self.local, self.redis, self.reads, self.events = {}, {}, [], []

    def keys(self, model, instances):
        return [f"{model.version}:{i}" for i in instances]

    def get_local(self, model, keys):
        return [self.local.get(key) for key in keys]

    def start_read(self, model, keys):
        self.reads.append(list(keys))
        self.events.append("sent")

        def finish():
            self.events.append("read")
            found = [self.redis.get(key) for key in keys]
            self.local.update((k, p) for k, p in zip(keys, found, strict=True) if p is not None)
            return found

        return finish

    def set_many(self, items):
        self.local.update(items)
        self.redis.update(items)


class BatchSizes:
    def __init__(self):
        self.sizes = []

    def batch(self, model, size, seconds):
        self.sizes.append(size)

    def answered(self, model, predictions):
        pass


def test_without_a_cache_every_request_is_a_bypass():
    model = CountingModel()
    outcome = Inference().predict(model, [1, 2])
    assert outcome.cache == "bypass"
    assert [p.label for p in outcome.predictions] == ["1", "2"]


def test_misses_then_hits_then_partial_keep_request_order_and_predict_only_misses():
    model, cache = CountingModel(), TwoTierCache()
    inference = Inference(cache)
    assert inference.predict(model, [1, 2]).cache == "miss"
    assert inference.predict(model, [2, 1]).cache == "hit"
    outcome = inference.predict(model, [3, 1, 4])
    assert outcome.cache == "partial"
    assert [p.label for p in outcome.predictions] == ["3", "1", "4"]
    assert model.batches == [[1, 2], [3, 4]], "misses go to the model in one call"
    assert cache.reads == [["v1:1", "v1:2"], ["v1:3", "v1:4"]], "local hits skip Redis"


def test_answers_another_replica_wrote_are_hits_read_from_redis_not_predicted():
    model, cache = CountingModel(), TwoTierCache()
    cache.redis["v1:7"] = Prediction("seven", {"seven": 1.0})
    outcome = Inference(cache).predict(model, [7, 8])
    assert [p.label for p in outcome.predictions] == ["seven", "8"]
    assert outcome.cache == "partial"
    assert Inference(cache).predict(model, [7]).cache == "hit"
    assert model.batches == [[8]]


def test_no_cache_header_bypasses_even_with_a_cache():
    model, cache = CountingModel(), TwoTierCache()
    Inference(cache).predict(model, [1])
    assert Inference(cache).predict(model, [1], use_cache=False).cache == "bypass"
    assert len(model.batches) == 2
    assert cache.reads == [["v1:1"]], "a bypass neither reads nor writes"


def test_the_resolver_reads_once_predicts_the_rest_once_and_writes_only_keyed_answers():
    model, cache, sizes = CountingModel(), TwoTierCache(), BatchSizes()
    cache.redis["k2"] = Prediction("stored", {"stored": 1.0})
    answers = Resolver(cache, sizes)(
        model, [Lookup(1, "k1"), Lookup(2, "k2"), Lookup(3, None), Lookup(4, "k4")])
    assert [(a.prediction.label, a.cached) for a in answers] == [
        ("1", False), ("stored", True), ("3", False), ("4", False)]
    assert cache.reads == [["k1", "k2", "k4"]], "one read, for the keyed lookups only"
    assert model.batches == [[1, 3, 4]], "one model call for everything Redis lacked"
    assert sizes.sizes == [3], "the batch metric counts instances per model call"
    assert sorted(cache.redis) == ["k1", "k2", "k4"], "an unkeyed answer is not written"


def test_a_batch_that_redis_answers_whole_makes_no_model_call():
    model, cache, sizes = CountingModel(), TwoTierCache(), BatchSizes()
    cache.redis["k"] = Prediction("stored", {"stored": 1.0})
    assert [a.cached for a in Resolver(cache, sizes)(model, [Lookup(1, "k")])] == [True]
    assert model.batches == [] and sizes.sizes == []
    assert cache.events == ["sent", "read"]


def stored(n):
    return Prediction(f"stored-{n}", {f"stored-{n}": 1.0})


def test_while_redis_rarely_has_the_answers_the_batch_is_predicted_during_the_read():
    cache = TwoTierCache()
    model = EventModel(cache.events)
    answers = Resolver(cache, predict_ahead_below=0.1)(model, [Lookup(1, "k1"), Lookup(2, "k2")])
    assert cache.events == ["sent", "predict", "read"]
    assert [(a.prediction.label, a.cached) for a in answers] == [("1", False), ("2", False)]
    assert sorted(cache.redis) == ["k1", "k2"]


def test_what_redis_had_is_answered_from_redis_and_later_batches_wait_for_their_read():
    cache, sizes = TwoTierCache(), BatchSizes()
    model = EventModel(cache.events)
    cache.redis.update({f"k{n}": stored(n) for n in (1, 2, 3, 5)})
    resolver = Resolver(cache, sizes, predict_ahead_below=0.1)
    first = resolver(model, [Lookup(n, f"k{n}") for n in (1, 2, 3, 4)])
    assert [(a.prediction.label, a.cached) for a in first] == [
        ("stored-1", True), ("stored-2", True), ("stored-3", True), ("4", False)]
    assert model.batches == [[1, 2, 3, 4]], "no reads yet to go by: predicted ahead"
    assert [cache.redis[f"k{n}"].label for n in (1, 2, 3, 4)] == [
        "stored-1", "stored-2", "stored-3", "4"], "only the new answer is written"
    cache.events.clear()
    second = resolver(model, [Lookup(5, "k5"), Lookup(6, "k6")])
    assert cache.events == ["sent", "read", "predict"], "3 of 4 keys were in Redis"
    assert [(a.prediction.label, a.cached) for a in second] == [("stored-5", True), ("6", False)]
    assert model.batches[-1] == [6] and sizes.sizes == [4, 1]


def test_predicting_ahead_resumes_a_few_reads_after_redis_stops_having_the_answers():
    cache = TwoTierCache()
    model = EventModel(cache.events)
    cache.redis["k0"] = stored(0)
    resolver = Resolver(cache, predict_ahead_below=0.1)
    resolver(model, [Lookup(0, "k0")])
    waited = 0
    for n in range(1, 30):
        cache.events.clear()
        resolver(model, [Lookup(n, f"k{n}")])
        if cache.events == ["sent", "predict", "read"]:
            break
        assert cache.events == ["sent", "read", "predict"]
        waited += 1
    assert 3 <= waited <= 12, "the history covers about the last ten reads"


def test_a_model_call_that_fails_ahead_of_the_read_still_collects_it_and_fails_the_batch():
    cache = TwoTierCache()
    model = EventModel(cache.events, fail=True)
    with pytest.raises(RuntimeError, match="boom"):
        Resolver(cache, predict_ahead_below=0.1)(model, [Lookup(1, "k1")])
    assert cache.events == ["sent", "predict", "read"], "the read's connection is freed"
    assert cache.redis == {}


def test_concurrent_requests_through_the_batcher_share_redis_reads_and_get_their_own_answers():
    backend, model = MemoryBackend(read_delay=0.02), CountingModel()
    for n in range(0, 40, 2):  # even numbers were answered by another replica
        label = f"stored-{n}"
        backend.store[cache_key(model, n)] = {"label": label, "scores": {label: 1.0}}
    cache = ResponseCache(backend, CircuitBreaker(3, 5.0), ttl_seconds=60,
                          local=LocalTier(100, 60))
    batcher = MicroBatcher(lambda name: BatchSettings(max_size=64, max_wait_ms=5),
                           NullMetrics(), work=Resolver(cache))
    inference = Inference(cache, runner=batcher.run)
    outcomes = {}

    def ask(n):
        outcomes[n] = inference.predict(model, [n])

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert cache.flush()
    for n in range(40):
        label = f"stored-{n}" if n % 2 == 0 else str(n)
        assert [p.label for p in outcomes[n].predictions] == [label]
        assert outcomes[n].cache == ("hit" if n % 2 == 0 else "miss")
    assert backend.reads < 40, "requests waiting together share one read"
    assert sorted(x for batch in model.batches for x in batch) == list(range(1, 40, 2))
