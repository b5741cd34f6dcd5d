"""SLO gates wired into Locust: a run whose budgets break exits non-zero.

The budgets and the verdict live in ``loadtest/slo.py``; this module only hooks them
to Locust's events.
"""

from __future__ import annotations

from locust import log as locust_log
from locust.runners import WorkerRunner

from loadtest import slo


def on_quitting(environment, **_kwargs) -> None:
    # Workers only hold their share of the traffic; the master judges the whole run.
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    slo.judge(environment, crashed=bool(locust_log.unhandled_greenlet_exception))
