"""A lock for short sections that never switch greenlets.

Under Gunicorn's gevent worker ``threading.Lock`` is gevent's. A ``with`` block on it
costs ~4,400 CPU instructions (counted under callgrind in a gevent-patched process),
and an uncached prediction takes such locks several times (read from the code):
around the local cache tier, the write-behind queue and the micro-batcher's queue.
``section_lock`` returns the operating system's lock instead, as
``threading.Lock`` was before gevent patched it: ~2,000 instructions a ``with`` block.

It may only guard a section that cannot switch greenlets: no I/O, no sleep, no
waiting on an event or a queue, no logging, nothing that calls out to code that might.
Then no other greenlet of the worker can ever find it taken, so it never blocks. A
greenlet that switched away while holding it would block the whole worker (every
greenlet runs on the one thread) the moment another asked for it. Between threads
(tests, a threaded server) it is an ordinary lock.
"""

from __future__ import annotations

from gevent.monkey import get_original

section_lock = get_original("_thread", "allocate_lock")
