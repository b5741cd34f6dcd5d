"""Cache keys and the circuit breaker, with a fake clock and an in-memory backend."""

import inspect
import os
import subprocess
import sys
import time

from deploy.procs import wait_until
from service.cache import (
    CircuitBreaker,
    JsonSerializer,
    LocalTier,
    ResponseCache,
    WriteBehind,
    cache_key,
)
from service.inference import PredictionCache
from service.models.base import Prediction
from service.models.iris import IrisInput
from tests.support.doubles import MemoryBackend, SlowWrites


class FakeModel:
    def __init__(self, name="iris", version="v1"):
        self.name, self.version = name, version


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_keys_name_model_and_version_and_ignore_the_spelling_of_an_instance():
    spec = IrisInput()
    (as_list,) = spec.canonical([[5.1, 3.5, 1.4, 0.2]])
    (as_dict,) = spec.canonical([{"sepal_length": 5.1, "sepal_width": 3.5,
                                  "petal_length": 1.4, "petal_width": 0.2}])
    assert cache_key(FakeModel(), as_list) == cache_key(FakeModel(), as_dict)
    assert cache_key(FakeModel(), as_list).startswith("iris:v1:")
    assert cache_key(FakeModel(version="v2"), as_list) != cache_key(FakeModel(), as_list)


def test_keys_are_the_same_in_every_process():
    """Python's salted hash() would differ between processes; sha256 must not."""
    code = ("from service.cache import cache_key; from types import SimpleNamespace as N; "
            "print(cache_key(N(name='sentiment', version='abc'), 'héllo 🚗'))")
    keys = {subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(keys) == 1
    assert keys.pop().strip() == cache_key(FakeModel("sentiment", "abc"), "héllo 🚗")


def test_every_text_gets_a_key_a_lone_surrogate_too():
    """orjson has no UTF-8 for a lone surrogate ("\\ud800" in a JSON body); the key is
    then made by the standard encoder, and the request is answered, not failed."""
    keys = {cache_key(FakeModel("sentiment", "abc"), text)
            for text in ("\ud800", "\udfff", "a\ud800", "héllo")}
    assert len(keys) == 4


def test_the_cache_takes_exactly_what_inference_passes_it():
    """No type checker runs here: the Protocol and the cache must not drift apart."""
    for name in ("keys", "get_local", "start_read", "set_many"):
        assert (inspect.signature(getattr(ResponseCache, name))
                == inspect.signature(getattr(PredictionCache, name))), name


def test_serializer_stores_json_and_reads_garbage_as_a_miss():
    serializer = JsonSerializer()
    assert serializer.dumps({"label": "x"}) == b'{"label":"x"}'
    assert serializer.loads(b'{"label":"x"}') == {"label": "x"}
    assert serializer.loads(b"\x80\x04garbage") is None
    assert serializer.loads(None) is None


def test_breaker_opens_after_failures_skips_redis_then_retries_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_seconds=5, clock=clock)
    backend = MemoryBackend()
    lookups = []
    cache = ResponseCache(backend, breaker, ttl_seconds=60,
                          on_lookup=lambda m, result, tier, n: lookups.append((result, tier, n)))
    model = FakeModel()
    backend.down = True
    for _ in range(2):
        assert cache.start_read(model, ["k1", "k2"])() == [None, None]
    assert breaker.is_open
    calls = backend.calls
    assert cache.start_read(model, ["k1"])() == [None]
    assert backend.calls == calls, "an open breaker must not touch Redis"
    backend.down = False
    clock.now += 5.1
    cache.set_many([("k1", Prediction("a", {"a": 1.0}))])
    assert cache.flush()
    assert not breaker.is_open
    assert cache.start_read(model, ["k1", "k2"])() == [Prediction("a", {"a": 1.0}), None]
    assert ("error", "redis", 1) in lookups
    assert ("hit", "redis", 1) in lookups and ("miss", "redis", 1) in lookups


def two_tier(entries=4, ttl=60.0):
    clock, backend, lookups = Clock(), MemoryBackend(), []
    local = LocalTier(entries, ttl, clock=clock)
    cache = ResponseCache(backend, CircuitBreaker(3, 5, clock=clock), ttl_seconds=3600,
                          on_lookup=lambda m, result, tier, n: lookups.append((result, tier, n)),
                          local=local)
    return cache, backend, local, clock, lookups


def test_the_local_tier_answers_hot_keys_without_redis_and_learns_from_redis_hits():
    cache, backend, _, _, lookups = two_tier()
    model, answer = FakeModel(), Prediction("a", {"a": 1.0})
    cache.set_many([("mine", answer)])
    assert cache.flush()
    backend.store["theirs"] = answer.as_dict()  # written by another replica
    calls = backend.calls
    assert cache.get_local(model, ["theirs", "mine"]) == [None, answer]
    assert backend.calls == calls, "the local tier never touches Redis"
    assert cache.start_read(model, ["theirs"])() == [answer]
    assert backend.calls == calls + 1
    assert cache.get_local(model, ["theirs"]) == [answer], "a Redis hit is kept locally"
    assert [n for result, tier, n in lookups if (result, tier) == ("hit", "redis")] == [1]
    assert sum(n for result, tier, n in lookups if (result, tier) == ("hit", "local")) == 2


def test_the_local_tier_is_bounded_lru_and_expires():
    local = LocalTier(2, ttl_seconds=10, clock=(clock := Clock()))
    a, b, c = (Prediction(x, {x: 1.0}) for x in "abc")
    local.put("a", a)
    local.put("b", b)
    assert local.get("a") == a  # now "b" is the least recently used
    local.put("c", c)
    assert (local.get("a"), local.get("b"), local.get("c")) == (a, None, c)
    clock.now += 10
    assert local.get("a") is None and local.get("c") is None, "expired"
    off = LocalTier(0, ttl_seconds=10)
    off.put("a", a)
    assert off.get("a") is None


def test_with_the_local_tier_off_every_lookup_asks_redis():
    cache, backend, _, _, _ = two_tier(entries=0)
    model, answer = FakeModel(), Prediction("a", {"a": 1.0})
    cache.set_many([("k", answer)])
    assert cache.flush()
    assert cache.get_local(model, ["k"]) == [None]
    calls = backend.calls
    assert cache.start_read(model, ["k"])() == [answer]
    assert backend.calls == calls + 1
    assert cache.get_local(model, ["k"]) == [None], "nothing is kept"


def test_a_failed_half_open_try_opens_the_breaker_again():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.failure()
    assert not breaker.allow()
    clock.now += 6
    assert breaker.allow(), "one try after the reset time"
    assert not breaker.allow(), "only one caller tries while half-open"
    breaker.failure()
    clock.now += 1
    assert not breaker.allow()


def test_writes_are_coalesced_while_one_is_in_flight_and_never_block_the_caller():
    write = SlowWrites()
    writer = WriteBehind(write, max_pending=100)
    writer.put({"a": 1})
    wait_until(lambda: write.calls, timeout=5)  # the first write is in flight
    started = time.perf_counter()
    for key in "bcdef":
        writer.put({key: 1})
    assert time.perf_counter() - started < 0.5, "put must not wait for Redis"
    write.release.set()
    assert writer.flush()
    assert write.calls == [{"a": 1}, {k: 1 for k in "bcdef"}], "five puts, one write"


def test_a_full_write_queue_drops_new_entries_and_a_failed_write_spares_the_loop():
    write, dropped = SlowWrites(fail_first=True), []
    writer = WriteBehind(write, max_pending=2, on_drop=dropped.append)
    writer.put({"a": 1})
    wait_until(lambda: write.calls, timeout=5)
    writer.put({"b": 1, "c": 1})
    writer.put({"d": 1})
    assert dropped == [1], "the dropped entry is reported for the metric"
    write.release.set()
    assert writer.flush()
    writer.put({"e": 1})
    assert writer.flush()
    assert write.calls == [{"a": 1}, {"b": 1, "c": 1}, {"e": 1}]
