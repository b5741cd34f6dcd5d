"""Inference against an in-memory cache double (unit layer: no Redis here)."""

from service.inference import Inference
from service.models.base import Prediction


class CountingModel:
    name, version = "m", "v1"

    def __init__(self):
        self.batches = []

    def predict(self, batch):
        self.batches.append(list(batch))
        return [Prediction(label=str(x), scores={str(x): 1.0}) for x in batch]


class DictCache:
    def __init__(self):
        self.store = {}

    def keys(self, model, instances):
        return [(model.version, i) for i in instances]

    def get_many(self, model, keys):
        return [self.store.get(key) for key in keys]

    def set_many(self, items):
        self.store.update(items)


def test_without_a_cache_every_request_is_a_bypass():
    model = CountingModel()
    outcome = Inference().predict(model, [1, 2])
    assert outcome.cache == "bypass"
    assert [p.label for p in outcome.predictions] == ["1", "2"]


def test_misses_then_hits_then_partial_keep_request_order_and_predict_only_misses():
    model, cache = CountingModel(), DictCache()
    inference = Inference(cache)
    assert inference.predict(model, [1, 2]).cache == "miss"
    assert inference.predict(model, [2, 1]).cache == "hit"
    outcome = inference.predict(model, [3, 1, 4])
    assert outcome.cache == "partial"
    assert [p.label for p in outcome.predictions] == ["3", "1", "4"]
    assert model.batches == [[1, 2], [3, 4]], "misses go to the model in one call"


def test_no_cache_header_bypasses_even_with_a_cache():
    model, cache = CountingModel(), DictCache()
    Inference(cache).predict(model, [1])
    assert Inference(cache).predict(model, [1], use_cache=False).cache == "bypass"
    assert len(model.batches) == 2
