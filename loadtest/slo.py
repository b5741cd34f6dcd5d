"""SLO budgets and the verdict on a finished run, free of Locust imports.

Budgets come from ``loadtest/locust.conf`` or the command line (``--slo-p95-ms``,
``--slo-p99-ms``, ``--slo-failure-ratio``, ``--slo-min-requests``). ``judge`` checks them
against the aggregated statistics and sets the process exit code; ``loadtest/gates.py``
calls it on Locust's ``quitting`` event. The verdict is also written as JSON when
``--slo-report`` names a file, so scripts and tests can read it. Nothing here imports
Locust (whose import monkey-patches the process), so tests can use it directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("loadtest.slo")


@dataclass(frozen=True)
class Budget:
    """What a run may cost: latency percentiles, failures, and a floor on the traffic."""

    p95_ms: float = 250.0
    p99_ms: float = 500.0
    failure_ratio: float = 0.01
    min_requests: int = 1
    """A run that sent (almost) nothing proves nothing, so it fails."""


@dataclass(frozen=True)
class Observed:
    """What a run measured, over every request name together."""

    requests: int
    failures: int
    p95_ms: float
    p99_ms: float
    user_errors: int = 0
    """Exceptions raised inside user code: a broken test, never a pass."""

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def violations(observed: Observed, budget: Budget) -> list[str]:
    """Every broken budget, in words; empty when the run passed."""
    broken = []
    if observed.requests < budget.min_requests:
        broken.append(f"{observed.requests} requests, fewer than the {budget.min_requests} needed")
    if observed.p95_ms > budget.p95_ms:
        broken.append(f"p95 {observed.p95_ms:.0f} ms > {budget.p95_ms:g} ms")
    if observed.p99_ms > budget.p99_ms:
        broken.append(f"p99 {observed.p99_ms:.0f} ms > {budget.p99_ms:g} ms")
    if observed.failure_ratio > budget.failure_ratio:
        broken.append(f"failure ratio {observed.failure_ratio:.4f} > {budget.failure_ratio:g}")
    if observed.user_errors:
        broken.append(f"{observed.user_errors} exceptions in user code")
    return broken


def observe(environment) -> Observed:
    """The aggregated numbers of a finished (or finishing) run."""
    total = environment.stats.total
    return Observed(
        requests=total.num_requests,
        failures=total.num_failures,
        p95_ms=float(total.get_response_time_percentile(0.95) or 0.0),
        p99_ms=float(total.get_response_time_percentile(0.99) or 0.0),
        user_errors=sum(e["count"] for e in environment.runner.exceptions.values()),
    )


def budget_from(options) -> Budget:
    return Budget(**{name: getattr(options, "slo_" + name) for name, _, _ in BUDGET_OPTIONS})


BUDGET_OPTIONS = (
    ("p95_ms", float, "Largest allowed 95th percentile response time, ms."),
    ("p99_ms", float, "Largest allowed 99th percentile response time, ms."),
    ("failure_ratio", float, "Largest allowed share of failed requests (0.01 = 1%%)."),
    ("min_requests", int, "Fewest requests a run must send to count."),
)


def add_arguments(parser) -> None:
    """``--slo-p95-ms`` and friends, one per ``Budget`` field, plus ``--slo-report``."""
    defaults = Budget()
    group = parser.add_argument_group("SLO gates", "Budgets; a broken one makes the exit code 1.")
    for name, kind, text in BUDGET_OPTIONS:
        flag = "--slo-" + name.replace("_", "-")
        group.add_argument(flag, type=kind, default=getattr(defaults, name), help=text)
    group.add_argument(
        "--slo-report",
        default="",
        help="Write the verdict as JSON to this file (folders are created).",
    )


def judge(environment, crashed: bool = False) -> list[str]:
    """Check the budgets, log the verdict, set the exit code and write the report.

    ``crashed`` says Locust itself hit an unhandled error; its own exit code then stands.
    """
    options = environment.parsed_options
    budget, observed = budget_from(options), observe(environment)
    broken = violations(observed, budget)
    for problem in broken:
        log.error("SLO broken: %s", problem)
    if not broken:
        log.info("SLO met: %s", observed)
    if broken:
        environment.process_exit_code = 1
    elif not crashed:
        # Without this, one failed request within the failure budget would still exit 1
        # (Locust's --exit-code-on-error); a crash inside Locust keeps its own code.
        environment.process_exit_code = 0
    if options.slo_report:
        path = Path(options.slo_report)
        path.parent.mkdir(parents=True, exist_ok=True)
        verdict = {
            "passed": not broken,
            "violations": broken,
            "budget": asdict(budget),
            "observed": asdict(observed),
        }
        path.write_text(json.dumps(verdict, indent=2) + "\n")
    return broken
