"""SLO gates: broken budgets become a non-zero exit code, kept ones a zero.

Locust itself is not imported here (its import monkey-patches the test process); the
verdict is computed from a small stand-in for Locust's aggregated statistics. The
e2e tests run the real thing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import pytest

from loadtest.slo import Budget, Observed, judge, violations


def test_a_run_within_every_budget_has_no_violations():
    observed = Observed(requests=1000, failures=5, p95_ms=80, p99_ms=150)
    assert violations(observed, Budget(p95_ms=100, p99_ms=200, failure_ratio=0.01)) == []


@pytest.mark.parametrize(
    ("observed", "fragment"),
    [
        (Observed(requests=1000, failures=0, p95_ms=101, p99_ms=150), "p95 101 ms > 100 ms"),
        (Observed(requests=1000, failures=0, p95_ms=80, p99_ms=201), "p99 201 ms > 200 ms"),
        (Observed(requests=1000, failures=11, p95_ms=80, p99_ms=150), "failure ratio 0.0110"),
        (Observed(requests=9, failures=0, p95_ms=1, p99_ms=1), "9 requests, fewer than the 10"),
        (
            Observed(requests=1000, failures=0, p95_ms=1, p99_ms=1, user_errors=2),
            "2 exceptions in user code",
        ),
    ],
)
def test_each_broken_budget_is_reported(observed, fragment):
    budget = Budget(p95_ms=100, p99_ms=200, failure_ratio=0.01, min_requests=10)
    assert [v for v in violations(observed, budget) if fragment in v]


@dataclass
class Totals:
    """The part of Locust's aggregated ``StatsEntry`` the verdict reads."""

    response_ms: list[float]
    num_failures: int

    @property
    def num_requests(self) -> int:
        return len(self.response_ms)

    def get_response_time_percentile(self, share: float) -> float:
        ordered = sorted(self.response_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Run:
    """A finished run as ``judge`` sees Locust's environment."""

    parsed_options: argparse.Namespace
    stats: object
    runner: object = field(default_factory=lambda: argparse.Namespace(exceptions={}))
    process_exit_code: int | None = None


def finished_run(tmp_path, response_ms: list[float], failures: int, **budget) -> Run:
    values = {
        "slo_p95_ms": 100.0,
        "slo_p99_ms": 200.0,
        "slo_failure_ratio": 0.01,
        "slo_min_requests": 10,
        "slo_report": str(tmp_path / "out" / "slo.json"),
    }
    values.update(budget)
    stats = argparse.Namespace(total=Totals(response_ms, failures))
    return Run(parsed_options=argparse.Namespace(**values), stats=stats)


def verdict(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "slo.json").read_text())


def test_a_run_within_budget_exits_zero_even_with_a_tolerated_failure(tmp_path):
    run = finished_run(tmp_path, [20.0] * 100, failures=1, slo_failure_ratio=0.02)
    assert judge(run) == []
    assert run.process_exit_code == 0
    assert verdict(tmp_path)["passed"] is True
    assert verdict(tmp_path)["observed"]["requests"] == 100


def test_a_slow_tail_breaks_the_p99_budget_only_and_exits_one(tmp_path):
    run = finished_run(tmp_path, [20.0] * 98 + [900.0] * 2, failures=0)
    broken = judge(run)
    assert broken == ["p99 900 ms > 200 ms"]
    assert run.process_exit_code == 1
    assert verdict(tmp_path)["violations"] == broken


def test_an_exception_in_user_code_fails_a_fast_run(tmp_path):
    run = finished_run(tmp_path, [5.0] * 100, failures=0)
    run.runner.exceptions = {"k": {"count": 3, "msg": "KeyError", "traceback": "", "nodes": []}}
    assert judge(run) == ["3 exceptions in user code"]
    assert run.process_exit_code == 1


def test_a_crash_inside_locust_keeps_locusts_own_exit_code(tmp_path):
    run = finished_run(tmp_path, [5.0] * 100, failures=0, slo_report="")
    assert judge(run, crashed=True) == []
    assert run.process_exit_code is None
    assert not (tmp_path / "out").exists()
