"""Test doubles shared by unit tests of the cache and of what holds it."""

from __future__ import annotations

import threading

from redis.exceptions import ConnectionError as RedisConnectionError


class SlowWrites:
    """A write that blocks until released, recording what each call carried."""

    def __init__(self, fail_first=False):
        self.calls, self.release, self.fail_first = [], threading.Event(), fail_first

    def __call__(self, mapping):
        self.calls.append(dict(mapping))
        self.release.wait(5)
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("boom")


class MemoryBackend:
    """The cache backend's two calls on a dict. ``down`` makes both fail as Redis would;
    ``read_delay`` makes reads take that long, so concurrent callers pile up."""

    def __init__(self, read_delay: float = 0.0):
        self.store, self.down, self.read_delay = {}, False, read_delay
        self.calls = self.reads = 0

    def start_get_many(self, *keys):
        self.calls += 1
        self.reads += 1
        if self.down:
            raise RedisConnectionError("refused")

        def finish():
            if self.read_delay:
                threading.Event().wait(self.read_delay)
            return [self.store.get(k) for k in keys]

        return finish

    def set_many(self, mapping, timeout=None):
        self.calls += 1
        if self.down:
            raise RedisConnectionError("refused")
        self.store.update(mapping)
