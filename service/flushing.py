"""What a worker gathers in memory and writes out in bulk: the shared parts.

Metric updates (service/metrics_buffer.py) and request-log lines (service/request_log.py)
are appended to a deque on the request path and written a second later, many at once.
Both need the same two things: take what is queued now without losing what other
threads append meanwhile, and a flusher that runs until its buffer is gone.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)


class Flushable(Protocol):
    def flush(self) -> None: ...


def drain(pending: deque) -> list:
    """Pop everything queued now; what other threads append meanwhile stays queued."""
    taken = []
    try:
        while True:
            taken.append(pending.popleft())
    except IndexError:
        return taken


def start_flusher(buffer: Flushable, interval: float, name: str) -> None:
    """Call ``buffer.flush()`` every ``interval`` seconds from a daemon thread (a greenlet
    under gevent), until ``buffer`` is garbage: the thread holds only a weak reference."""
    threading.Thread(target=_flush_forever, args=(weakref.ref(buffer), interval, name),
                     name=name, daemon=True).start()


def _flush_forever(buffer_ref: weakref.ref, interval: float, name: str) -> None:
    while True:
        time.sleep(interval)
        buffer = buffer_ref()
        if buffer is None:  # its app is gone
            return
        try:
            buffer.flush()
        except Exception:  # the loop must outlive any one flush
            log.exception("%s: flush failed", name)
        del buffer
