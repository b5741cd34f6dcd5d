"""Load profiles: steady, step, spike and soak, as pure functions of time.

A profile takes the elapsed seconds and the common options (``-u`` users, ``-r`` spawn
rate, ``-t`` run time) and returns the ``(users, spawn_rate)`` wanted now, or ``None``
when the run is over. ``loadtest/shapes.py`` runs them inside Locust; keeping them free
of Locust imports lets the tests check them without gevent's monkey-patching.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """The common options a profile scales itself by."""

    users: int
    spawn_rate: float
    run_time: float | None
    """Seconds; ``None`` when ``-t`` is not given (the profile's own default applies)."""


Step = tuple[int, float] | None
Profile = Callable[[float, Plan], Step]

STEP_COUNT = 5
STEP_DEFAULT_SECONDS = 150.0
SPIKE_DEFAULT_SECONDS = 60.0
SOAK_DEFAULT_SECONDS = 1800.0


def steady(elapsed: float, plan: Plan) -> Step:
    """Ramp to ``users`` at ``spawn_rate`` and hold them until the run time is up."""
    if plan.run_time is not None and elapsed >= plan.run_time:
        return None
    return plan.users, plan.spawn_rate


def step(elapsed: float, plan: Plan) -> Step:
    """Five equal stairs from a fifth of ``users`` up to all of them.

    Each stair lasts a fifth of the run time, so the latency at each load level can be
    read off the report's history chart.
    """
    total = plan.run_time or STEP_DEFAULT_SECONDS
    if elapsed >= total:
        return None
    stair = min(STEP_COUNT - 1, int(elapsed // (total / STEP_COUNT)))
    users = max(1, math.ceil(plan.users * (stair + 1) / STEP_COUNT))
    return users, plan.spawn_rate


def spike(elapsed: float, plan: Plan) -> Step:
    """A fifth of ``users`` as a base load, all of them in the middle fifth of the run.

    The spike arrives within about a second, whatever ``-r`` says: that is what a spike is.
    """
    total = plan.run_time or SPIKE_DEFAULT_SECONDS
    if elapsed >= total:
        return None
    base = max(1, plan.users // 5)
    if 0.4 * total <= elapsed < 0.6 * total:
        return plan.users, float(max(plan.spawn_rate, plan.users))
    return base, float(max(plan.spawn_rate, plan.users))


def soak(elapsed: float, plan: Plan) -> Step:
    """``users`` held for a long time (30 minutes unless ``-t`` says otherwise).

    Used to find slow leaks: watch memory, open connections and p99 drift in Grafana.
    """
    total = plan.run_time or SOAK_DEFAULT_SECONDS
    return steady(elapsed, Plan(plan.users, plan.spawn_rate, total))


PROFILES: dict[str, Profile] = {"steady": steady, "step": step, "spike": spike, "soak": soak}
DEFAULT_PROFILE = "steady"


def wanted(options, elapsed: float) -> Step:
    """What the profile named in Locust's parsed ``options`` asks for after ``elapsed`` s."""
    plan = Plan(
        users=options.num_users or 1,
        spawn_rate=options.spawn_rate or 1.0,
        run_time=options.run_time or None,
    )
    return PROFILES[options.load_shape](elapsed, plan)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--load-shape",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="Load profile: steady, step, spike or soak, scaled by -u, -r and -t.",
    )
