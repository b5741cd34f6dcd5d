"""The Locust suite against the real stack: short, bounded runs that must pass their gates.

Each run is headless, lasts seconds (``-t``), and is killed by a subprocess timeout
if it ever overstays; all traffic goes to the stack's loopback NGINX port.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.procs import ROOT

pytestmark = pytest.mark.slow

RUN_SECONDS = 12
USERS = 20
GROUPS = (
    "/v1/models/iris/predict [hot]",
    "/v1/models/iris/predict [cold]",
    "/v1/models/sentiment/predict [hot]",
    "/v1/models/sentiment/predict [cold]",
)


def locust_options(host: str, out: Path, seconds: int = RUN_SECONDS) -> list[str]:
    """The project's own locust.conf, pointed at ``host``, with reports in ``out``."""
    return [
        "--config", "loadtest/locust.conf", "-H", host,
        "-u", str(USERS), "-r", str(USERS), "-t", f"{seconds}s",
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
        "--slo-report", str(out / "slo.json"),
    ]  # fmt: skip


def run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def stats_rows(out: Path) -> dict[str, dict]:
    with open(out / "locust_stats.csv", newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def wrong_answers(out: Path) -> list[str]:
    """Failures other than a 5xx to a valid request: wrong labels, scores, cache states, errors.

    Transient 5xx answers are what the failure budget is for; a wrong answer never is.
    """
    with open(out / "locust_failures.csv", newline="") as handle:
        errors = [f"{row['Name']}: {row['Error']}" for row in csv.DictReader(handle)]
    return [error for error in errors if not re.search(r"'status 5\d\d, wanted 200'", error)]


def test_a_short_mixed_run_against_the_stack_meets_its_slo_gates(full_stack, tmp_path):
    done = run(["-m", "locust", *locust_options(full_stack.nginx_url, tmp_path)], timeout=90)
    verdict = json.loads((tmp_path / "slo.json").read_text())
    assert done.returncode == 0, f"{verdict}\n{done.stderr[-4000:]}"
    assert verdict["passed"] is True
    assert verdict["observed"]["requests"] >= 300

    rows = stats_rows(tmp_path)
    for group in GROUPS:
        assert int(rows[group]["Request Count"]) > 0, group
    assert [name for name in rows if name.startswith("bad input [")], "no bad input was sent"
    assert wrong_answers(tmp_path) == []
    assert (tmp_path / "locust.html").stat().st_size > 10_000


def test_a_broken_latency_budget_makes_locust_exit_non_zero(full_stack, tmp_path):
    options = locust_options(full_stack.nginx_url, tmp_path, seconds=4)
    done = run(["-m", "locust", *options, "--slo-p95-ms", "0.01"], timeout=60)
    verdict = json.loads((tmp_path / "slo.json").read_text())
    assert done.returncode == 1, done.stderr[-4000:]
    assert verdict["passed"] is False
    assert [v for v in verdict["violations"] if v.startswith("p95 ")]


def test_a_distributed_run_with_two_workers_merges_their_traffic_and_passes(full_stack, tmp_path):
    options = locust_options(full_stack.nginx_url, tmp_path)
    done = run(["-m", "loadtest.distributed", "--workers", "2", "--timeout", "90", "--",
                *options], timeout=120)  # fmt: skip
    verdict = json.loads((tmp_path / "slo.json").read_text())
    assert done.returncode == 0, f"{verdict}\n{done.stderr[-4000:]}"
    assert "2 workers connected" in done.stderr
    assert verdict["passed"] is True
    assert verdict["observed"]["requests"] >= 300
    assert wrong_answers(tmp_path) == []
