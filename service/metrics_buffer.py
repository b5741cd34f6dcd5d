"""Metric updates gathered in a worker and written to their series in bulk.

In multiprocess mode (Gunicorn) every ``inc`` and ``observe`` of prometheus_client
writes its value to the worker's mmapped file under a lock: ~9,000-11,000 CPU
instructions an ``inc``, twice that an ``observe`` (counted under callgrind), about ten
updates a prediction. Here an update is a tuple appended to a deque. ``flush`` sums
them per series and writes each sum once: one write per series and flush, not per
update. A histogram's observations are counted into its buckets as ``observe`` would.

A flusher thread (a greenlet under gevent) writes them every ``max_age_seconds``, and
``Metrics`` flushes its worker's buffer before serving a scrape, so a scrape shows
everything its own worker has answered and the other workers' answers at most that
late. A stopping worker flushes last (``AppState.close``). Nothing is dropped but by a
worker killed outright (its last second): the deques are thread-safe, and a flush takes
only what it pops.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Any

from service.flushing import drain, start_flusher


class MetricBuffer:
    """Pending ``inc`` (counters, gauges) and ``observe`` (histograms) updates."""

    def __init__(self, max_age_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._increments: deque[tuple[Any, float]] = deque()
        self._observations: deque[tuple[Any, float]] = deque()
        self._flushed_at = clock()

    def inc(self, series: Any, amount: float = 1.0) -> None:
        """A counter's or gauge's ``inc`` (negative for a gauge's ``dec``)."""
        self._increments.append((series, amount))

    def observe(self, series: Any, value: float) -> None:
        """A histogram's ``observe``."""
        self._observations.append((series, value))

    def flush_if_stale(self) -> None:
        """Flush when the last flush is ``max_age_seconds`` old: a backstop for a worker
        whose flusher is not running (one forked from a process that started it)."""
        if self._clock() - self._flushed_at >= self.max_age_seconds:
            self.flush()

    def start_flusher(self) -> None:
        """Flush every ``max_age_seconds`` from a daemon thread, until this buffer is gone."""
        start_flusher(self, self.max_age_seconds, "metrics-flusher")

    def flush(self) -> None:
        """Write every pending update to its series."""
        self._flushed_at = self._clock()
        sums: dict[Any, float] = {}
        for series, amount in drain(self._increments):
            sums[series] = sums.get(series, 0.0) + amount
        for series, amount in sums.items():
            if amount:
                series.inc(amount)
        # histogram -> (sum of values, count per bucket index)
        observed: dict[Any, tuple[float, dict[int, int]]] = {}
        for series, value in drain(self._observations):
            total, buckets = observed.get(series, (0.0, {}))
            # the first bucket whose upper bound holds the value, as ``observe`` picks it
            index = bisect_left(series._upper_bounds, value)
            buckets[index] = buckets.get(index, 0) + 1
            observed[series] = (total + value, buckets)
        for series, (total, buckets) in observed.items():
            series._sum.inc(total)
            for index, count in buckets.items():
                series._buckets[index].inc(count)
