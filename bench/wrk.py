"""One wrk measurement: a workload at a fixed concurrency for a fixed time.

The Lua script ``bench/wrk/workload.lua`` makes the request bodies and prints one
``BENCH {json}`` line at the end; that line is all we read from wrk.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

from bench import stack_metrics
from bench.systems import System
from deploy.procs import ROOT, binary

SCRIPT = ROOT / "bench" / "wrk" / "workload.lua"
DEFAULT_WORKLOADS = ("healthz", "iris-cached", "iris-uncached", "sentiment-uncached", "mixed")
"""What ``make bench`` measures by default; the report's targets are about these."""
WORKLOADS = (*DEFAULT_WORKLOADS, "iris-no-cache")
"""Every workload the script knows; ``iris-no-cache`` (unique flowers sent with
``Cache-Control: no-cache``) shows, beside ``iris-uncached``, what the cache costs a miss."""
CEILING = "healthz"
WRK_TIMEOUT = "10s"
"""Longer than any answer we expect, so slow answers are measured rather than dropped."""


@dataclass(frozen=True)
class Sample:
    """What one wrk run measured."""

    system: str
    workload: str
    concurrency: int
    round: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_seconds: float = 0.0
    """CPU time the system's processes used during the run (all cores together)."""
    internals: dict[str, float] = field(default_factory=dict)
    """What the system's own metrics said about the run (see ``bench/stack_metrics.py``)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0


def command(url: str, workload: str, concurrency: int, seconds: float, seed: int,
            threads: int = 1) -> list[str]:  # fmt: skip
    return [
        binary("wrk"), f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s",
        "--timeout", WRK_TIMEOUT, "-s", str(SCRIPT), url, "--", workload, str(seed),
    ]  # fmt: skip


def parse(output: str) -> dict:
    """The numbers from the script's ``BENCH`` line."""
    for line in output.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise ValueError(f"no BENCH line in wrk output:\n{output[-2000:]}")


def errors(numbers: dict) -> int:
    """Every request that did not get a 2xx/3xx answer in time."""
    kinds = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    return sum(int(numbers[kind]) for kind in kinds)


def measure(system: System, workload: str, concurrency: int, seconds: float,
            round_: int, seed: int) -> Sample:  # fmt: skip
    """Run wrk once against ``system`` and return what it measured."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; one of {WORKLOADS}")
    metrics_before = stack_metrics.scrape(system.metrics_urls)
    cpu_before = system.cpu_seconds()
    done = subprocess.run(
        command(system.url, workload, concurrency, seconds, seed),
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    cpu_used = system.cpu_seconds() - cpu_before
    metrics_after = stack_metrics.scrape(system.metrics_urls)
    numbers = parse(done.stdout)
    return Sample(
        system=system.name,
        workload=workload,
        concurrency=concurrency,
        round=round_,
        requests=int(numbers["requests"]),
        seconds=int(numbers["duration_us"]) / 1e6,
        errors=errors(numbers),
        p50_ms=int(numbers["p50_us"]) / 1000,
        p99_ms=int(numbers["p99_us"]) / 1000,
        cpu_seconds=cpu_used,
        internals=stack_metrics.describe(metrics_before, metrics_after)
        if system.metrics_urls
        else {},
    )
