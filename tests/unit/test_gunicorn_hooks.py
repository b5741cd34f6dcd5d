"""Gunicorn hooks: how a worker schedules its connections, and what it does on exit.

The config monkey-patches the process it is imported in, so it is imported in a child
Python here, never in the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from deploy.procs import ROOT

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


_BLAS_THREADS_AFTER_THE_CONFIG = """
import runpy
runpy.run_path("service/gunicorn_conf.py")  # by path, as gunicorn -c loads it
from threadpoolctl import threadpool_info
print(sorted({pool["num_threads"] for pool in threadpool_info()}))
"""


def test_the_config_holds_blas_and_openmp_to_one_thread_before_numpy_loads():
    """The master loads numpy with the service package, and workers inherit it loaded:
    a thread count set after that import is never read."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", _BLAS_THREADS_AFTER_THE_CONFIG], cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
