"""The sections guarded by ``service.locks.section_lock`` never switch greenlets.

If one did, a second greenlet asking for the lock would block the worker's only thread
for good. Many greenlets run through every such section at once here, in a process
patched by gevent as a Gunicorn worker is, with each section's neighbours (the Redis
read, the write, the model) yielding as real I/O would.
"""

from __future__ import annotations

import subprocess
import sys

from deploy.procs import ROOT

SCRIPT = """
from gevent import monkey
monkey.patch_all()

import gevent

from service.batching import MicroBatcher
from service.cache import LocalTier, WriteBehind
from service.metrics import NullMetrics
from service.settings import BatchSettings


def write(batch):
    gevent.sleep(0.001)
    written.extend(batch.values())


class Model:
    name, version = "m", "1"

    def predict(self, instances):
        gevent.sleep(0.001)
        return [2 * x for x in instances]


def work(model, instances):
    gevent.sleep(0.001)  # the batch's Redis read
    return model.predict(instances)


written = []
behind = WriteBehind(write, max_pending=10_000)  # its first put starts the writer
tier = LocalTier(100, 60)
batcher = MicroBatcher(lambda name: BatchSettings(max_size=8, max_wait_ms=1), NullMetrics(),
                       work)


def one(i):
    behind.put({f"k{i}": i})
    tier.put(i % 150, i)
    tier.get(i % 150)
    assert batcher.run(Model(), [i]) == [2 * i]


with gevent.Timeout(30):
    gevent.joinall([gevent.spawn(one, i) for i in range(300)], raise_error=True)
    assert behind.flush(5)
print("answered", len(sorted(written)))
"""


def test_greenlets_crowding_every_guarded_section_all_finish():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["answered", "300"]
