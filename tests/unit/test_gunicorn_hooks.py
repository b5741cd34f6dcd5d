"""Gunicorn hooks that change how a worker schedules its connections.

The config monkey-patches the process it is imported in, so it is imported in a child
Python here, never in the test process.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import ROOT

_POST_REQUEST_YIELDS = """
import gevent
from service import gunicorn_conf

order = []
other = gevent.spawn(order.append, "another ready connection")
gunicorn_conf.post_request(None, None, {}, None)
order.append("this connection's next request")
print(order)
"""


def test_after_a_request_every_other_ready_greenlet_runs_before_the_next_one():
    done = subprocess.run([sys.executable, "-c", _POST_REQUEST_YIELDS], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == (
        "['another ready connection', \"this connection's next request\"]"), done.stderr
