"""MetricBuffer: gathered updates reach their series exactly as direct updates would."""

from __future__ import annotations

import gc
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from deploy.procs import wait_until
from service.metrics_buffer import MetricBuffer


def series_set(registry: CollectorRegistry):
    counter = Counter("answers", "a", ["label"], registry=registry)
    gauge = Gauge("busy", "b", registry=registry)
    histogram = Histogram("seconds", "c", ["model"], buckets=(0.001, 0.01, 0.1, 1.0),
                          registry=registry)
    return counter, gauge, histogram


def samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def test_a_flush_writes_what_direct_updates_would():
    direct, buffered = CollectorRegistry(), CollectorRegistry()
    counter, gauge, histogram = series_set(direct)
    b_counter, b_gauge, b_histogram = series_set(buffered)
    buffer = MetricBuffer()
    # values on bucket bounds, between them, below the first and past the last
    values = [0.0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.99, 1.0, 2.5, 30.0]
    for value in values:
        histogram.labels("iris").observe(value)
        buffer.observe(b_histogram.labels("iris"), value)
    for label, amount in [("a", 1), ("b", 3), ("a", 2)]:
        counter.labels(label).inc(amount)
        buffer.inc(b_counter.labels(label), amount)
    for amount in (1, 1, -1, 1, -1):
        gauge.inc(amount)
        buffer.inc(b_gauge, amount)
    assert samples(buffered) != samples(direct), "nothing is written before a flush"
    buffer.flush()
    assert samples(buffered) == samples(direct)
    buffer.flush()  # an empty flush changes nothing
    assert samples(buffered) == samples(direct)


def test_updates_made_during_flushes_from_other_threads_are_all_counted():
    registry = CollectorRegistry()
    counter, _, histogram = series_set(registry)
    buffer = MetricBuffer()
    writers, per_writer = 4, 5000
    stop = threading.Event()

    def write():
        for _ in range(per_writer):
            buffer.inc(counter.labels("x"))
            buffer.observe(histogram.labels("iris"), 0.005)

    def flush_repeatedly():
        while not stop.is_set():
            buffer.flush()

    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    flusher.join()
    buffer.flush()
    found = samples(registry)
    assert found[("answers_total", (("label", "x"),))] == writers * per_writer
    assert found[("seconds_count", (("model", "iris"),))] == writers * per_writer


def test_flush_if_stale_waits_for_the_age():
    now = [100.0]
    registry = CollectorRegistry()
    counter, _, _ = series_set(registry)
    buffer = MetricBuffer(max_age_seconds=1.0, clock=lambda: now[0])
    buffer.inc(counter.labels("x"))
    now[0] += 0.5
    buffer.flush_if_stale()
    assert samples(registry)[("answers_total", (("label", "x"),))] == 0
    now[0] += 0.5
    buffer.flush_if_stale()
    assert samples(registry)[("answers_total", (("label", "x"),))] == 1


def test_the_flusher_writes_on_its_own_and_ends_with_its_buffer():
    registry = CollectorRegistry()
    counter, _, _ = series_set(registry)
    buffer = MetricBuffer(max_age_seconds=0.05)
    before = {t for t in threading.enumerate() if t.name == "metrics-flusher"}
    buffer.start_flusher()
    buffer.inc(counter.labels("x"), 2)
    wait_until(lambda: samples(registry).get(("answers_total", (("label", "x"),))) == 2,
               timeout=5, what="the flusher's write")
    del buffer
    gc.collect()
    wait_until(lambda: {t for t in threading.enumerate()
                        if t.name == "metrics-flusher"} <= before,
               timeout=5, what="the flusher to end")
