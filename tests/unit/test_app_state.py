"""What a worker's app state does when the worker stops: request lines and metric updates
written, pending cache writes given their chance."""

from __future__ import annotations

import json
import logging
import threading

from deploy.procs import wait_until
from service import AppState
from service.cache import CircuitBreaker, ResponseCache
from service.inference import Inference
from service.models.base import Prediction
from service.models.registry import Registry
from service.request_log import RequestLines
from service.settings import Settings
from tests.support.doubles import SlowWrites

ANSWER = Prediction("a", {"a": 1.0})


class SlowRedis:
    """A backend whose every write waits for ``write`` (a SlowWrites) to be released."""

    def __init__(self, write: SlowWrites):
        self.write, self.store = write, {}

    def set_many(self, mapping, timeout=None):
        self.write(mapping)
        self.store.update(mapping)


def state(cache=None) -> AppState:
    return AppState(Settings(), Registry({}, {}), Inference(cache), cache)


def state_with_a_write_in_flight():
    write = SlowWrites()
    redis = SlowRedis(write)
    cache = ResponseCache(redis, CircuitBreaker(3, 5), ttl_seconds=60)
    cache.set_many([("k", ANSWER)])
    wait_until(lambda: write.calls, timeout=5, what="the write to be in flight")
    return state(cache), write, redis


def test_closing_waits_for_the_cache_write_in_flight_then_says_all_were_written():
    app_state, write, redis = state_with_a_write_in_flight()
    closed = []
    closer = threading.Thread(target=lambda: closed.append(app_state.close(timeout=10)))
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close returned while a write was still in flight"
    write.release.set()
    closer.join(5)
    assert closed == [True]
    assert redis.store == {"k": ANSWER.as_dict()}


def test_closing_gives_up_after_its_timeout_and_warns(caplog):
    app_state, write, _ = state_with_a_write_in_flight()
    try:
        with caplog.at_level(logging.WARNING, logger="service"):
            assert app_state.close(timeout=0.05) is False
    finally:
        write.release.set()
    assert "cache writes still pending" in caplog.text


def test_closing_with_nothing_pending_or_no_cache_succeeds_without_a_word(caplog):
    idle = ResponseCache(SlowRedis(SlowWrites()), CircuitBreaker(3, 5), ttl_seconds=60)
    with caplog.at_level(logging.INFO, logger="service"):
        assert state(idle).close(timeout=10) is True
        assert state(None).close(timeout=10) is True
    assert "pending" not in caplog.text


class CountingMetrics:
    def __init__(self):
        self.flushes = 0

    def flush(self):
        self.flushes += 1


def test_closing_writes_the_gathered_metric_updates_with_or_without_a_cache():
    for cache in (None, ResponseCache(SlowRedis(SlowWrites()), CircuitBreaker(3, 5), 60)):
        metrics = CountingMetrics()
        app_state = AppState(Settings(), Registry({}, {}), Inference(cache), cache,
                             metrics=metrics)
        assert app_state.close(timeout=1)
        assert metrics.flushes == 1


def test_closing_writes_the_queued_request_lines_first(caplog):
    log = logging.getLogger("test.app_state.lines")
    lines = RequestLines(log, max_age_seconds=3600)
    lines.add({"request_id": "last-one", "status": 200})
    app_state = AppState(Settings(), Registry({}, {}), Inference(None), request_lines=lines)
    with caplog.at_level(logging.INFO, logger=log.name):
        assert app_state.close(timeout=1)
    (record,) = caplog.records
    assert [json.loads(line)["request_id"] for line in record.lines] == ["last-one"]
