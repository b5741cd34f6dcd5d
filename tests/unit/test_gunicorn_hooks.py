"""Gunicorn hooks: how a worker schedules its connections, and what it does on exit.

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


_WORKER_EXIT_CLOSES_THE_APP_STATE = """
from types import SimpleNamespace
from service import gunicorn_conf

closed = []
app = SimpleNamespace(extensions={"infer": SimpleNamespace(close=lambda: closed.append(1))})
gunicorn_conf.worker_exit(None, SimpleNamespace(wsgi=app))
gunicorn_conf.worker_exit(None, SimpleNamespace())  # the master's copy: no app loaded
print(closed)
"""


def test_an_exiting_worker_closes_its_app_state_and_the_masters_copy_has_none():
    done = subprocess.run([sys.executable, "-c", _WORKER_EXIT_CLOSES_THE_APP_STATE], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
