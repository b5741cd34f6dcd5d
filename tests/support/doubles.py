"""Test doubles shared by unit tests of the cache and of what holds it."""

from __future__ import annotations

import threading


class SlowWrites:
    """A write that blocks until released, recording what each call carried."""

    def __init__(self, fail_first=False):
        self.calls, self.release, self.fail_first = [], threading.Event(), fail_first

    def __call__(self, mapping):
        self.calls.append(dict(mapping))
        self.release.wait(5)
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("boom")
