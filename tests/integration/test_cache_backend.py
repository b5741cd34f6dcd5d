"""The cache's Redis backend against a real Redis: one script call writes a batch."""

from __future__ import annotations

import time

import pytest
import redis
from flask import Flask

from service.cache import ScriptedRedisCache, init_cache
from service.metrics import NullMetrics
from service.settings import Settings


@pytest.fixture
def backend(redis_url):
    redis.Redis.from_url(redis_url).flushall()
    cache = init_cache(Flask(__name__), Settings(redis_url=redis_url, cache_ttl_seconds=600),
                       NullMetrics())
    assert cache is not None
    return cache._backend


def test_a_batch_is_written_with_its_expiry_and_read_back(backend, redis_url):
    assert isinstance(backend, ScriptedRedisCache)
    answers = {f"iris:v1:{i}": {"label": "setosa", "scores": {"setosa": i / 10}}
               for i in range(5)}
    assert backend.set_many(answers, timeout=600) == list(answers)
    client = redis.Redis.from_url(redis_url)
    stored = sorted(key.decode() for key in client.keys("*"))
    assert stored == sorted(f"infer:{key}" for key in answers), "the deployment prefix"
    assert all(590 <= client.ttl(key) <= 600 for key in stored)
    assert backend.get_many(*answers, "iris:v1:absent") == [*answers.values(), None]


def test_the_script_is_sent_again_when_redis_has_lost_it(backend, redis_url):
    client = redis.Redis.from_url(redis_url)
    backend.set_many({"a": {"label": "x"}}, timeout=600)
    client.script_flush()  # as after a Redis restart
    backend.set_many({"b": {"label": "y"}}, timeout=600)
    assert backend.get_many("a", "b") == [{"label": "x"}, {"label": "y"}]


def test_a_timeout_of_zero_keeps_the_answers_without_expiry(backend, redis_url):
    backend.set_many({"forever": {"label": "x"}}, timeout=0)
    assert redis.Redis.from_url(redis_url).ttl("infer:forever") == -1
    assert backend.set_many({}, timeout=600) == []


def test_a_read_sent_ahead_is_answered_later_and_its_connection_reused(backend, redis_url):
    backend.set_many({"a": {"label": "x"}}, timeout=600)
    client = redis.Redis.from_url(redis_url)
    counts = []
    for _ in range(3):
        finish = backend.start_get_many("a", "absent")
        backend.set_many({"b": {"label": "y"}}, timeout=600)  # meanwhile, on another connection
        assert finish() == [{"label": "x"}, None]
        counts.append(len(client.client_list()))
    assert counts[0] == counts[1] == counts[2], "the read's connection goes back to the pool"


def test_a_read_that_times_out_is_closed_so_no_later_read_gets_its_answer(backend, redis_url):
    backend.set_many({"a": {"label": "x"}, "b": {"label": "y"}}, timeout=600)
    client = redis.Redis.from_url(redis_url)
    client.client_pause(400, all=True)
    paused_until = time.monotonic() + 0.4
    finish = backend.start_get_many("a")
    with pytest.raises(redis.exceptions.TimeoutError):
        finish()  # the socket timeout (50 ms) runs out first
    time.sleep(max(0.0, paused_until - time.monotonic()) + 0.05)
    assert backend.start_get_many("b")() == [{"label": "y"}]
