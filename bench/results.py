"""From raw samples to the report's numbers: medians, ranges, ratios and targets."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bench.wrk import CEILING, Sample

REFERENCE_CONCURRENCY = 64


@dataclass(frozen=True)
class Spread:
    """The median of a few runs and their range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        values = list(values)
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Summary:
    """One system, workload and concurrency over all its rounds."""

    system: str
    workload: str
    concurrency: int
    runs: int
    rps: Spread
    p50_ms: Spread
    p99_ms: Spread
    errors: int
    """Summed over the runs."""
    cpu_ms: Spread
    """CPU time of every server process (NGINX, replicas, Redis...) per request, in ms."""
    internals: dict[str, float]
    """Median over the runs of each figure the system's own metrics gave."""


Key = tuple[str, str, int]


def summarise(samples: Iterable[Sample]) -> dict[Key, Summary]:
    groups: dict[Key, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[(sample.system, sample.workload, sample.concurrency)].append(sample)
    return {
        key: Summary(
            *key,
            runs=len(group),
            rps=Spread.of(s.rps for s in group),
            p50_ms=Spread.of(s.p50_ms for s in group),
            p99_ms=Spread.of(s.p99_ms for s in group),
            errors=sum(s.errors for s in group),
            cpu_ms=Spread.of(s.cpu_ms_per_request for s in group),
            internals=_median_internals(group),
        )
        for key, group in sorted(groups.items())
    }


def _median_internals(group: list[Sample]) -> dict[str, float]:
    keys = sorted({key for sample in group for key in sample.internals})
    return {
        key: statistics.median(s.internals[key] for s in group if key in s.internals)
        for key in keys
    }


def ratio(summaries: dict[Key, Summary], key: Key, against: Key) -> float | None:
    """Median throughput of ``key`` over that of ``against``; ``None`` when either is missing."""
    if key not in summaries or against not in summaries:
        return None
    base = summaries[against].rps.median
    return summaries[key].rps.median / base if base else None


def to_ceiling(summaries: dict[Key, Summary], key: Key) -> float | None:
    """Throughput as a share of the stack's trivial route at the same concurrency."""
    return ratio(summaries, key, ("stack", CEILING, key[2]))


def to_baseline(summaries: dict[Key, Summary], key: Key) -> float | None:
    """Throughput as a multiple of the naive baseline's, same workload and concurrency."""
    return ratio(summaries, key, ("naive", key[1], key[2]))


def times(value: float | None) -> str:
    """A multiple as the report prints it: two decimals, so 2.96x never reads as 3.0x."""
    return "-" if value is None else f"{value:.2f}x"


def percent(value: float | None) -> str:
    """A share as the report prints it: one decimal, so 78.7% never reads as 79%."""
    return "-" if value is None else f"{value:.1%}"


@dataclass(frozen=True)
class Target:
    """One of the issue's performance targets and what this run measured for it."""

    goal: str
    measured: str
    met: bool | None
    """``None`` when this run did not measure what the target needs."""


def _share_target(summaries, workload: str, floor: float, what: str) -> Target:
    key = ("stack", workload, REFERENCE_CONCURRENCY)
    share = to_ceiling(summaries, key)
    goal = f"{what} at c={REFERENCE_CONCURRENCY}: at least {floor:.0%} of the ceiling"
    if share is None:
        return Target(goal, "not measured", None)
    return Target(goal, percent(share), share >= floor)


def targets(summaries: dict[Key, Summary]) -> list[Target]:
    """The issue's targets, each met, missed or not measured."""
    found = [
        _share_target(summaries, "iris-uncached", 0.60, "uncached iris"),
        _share_target(summaries, "sentiment-uncached", 0.40, "uncached sentiment"),
        _share_target(summaries, "iris-cached", 0.80, "cache hits (iris)"),
    ]
    stack = {k: s for k, s in summaries.items() if k[0] == "stack"}
    at_64 = [s for k, s in stack.items() if k[2] == REFERENCE_CONCURRENCY and k[1] != CEILING]
    if at_64:
        worst = max(at_64, key=lambda s: s.p99_ms.median)
        found.append(Target(
            f"p99 at c={REFERENCE_CONCURRENCY}: at most 50 ms for every workload",
            f"worst {worst.p99_ms.median:.1f} ms ({worst.workload})",
            worst.p99_ms.median <= 50,
        ))  # fmt: skip
    at_256 = [s for k, s in stack.items() if k[2] == 256]
    if at_256:
        errors = sum(s.errors for s in at_256)
        found.append(Target("zero errors at c=256", f"{errors} errors", errors == 0))
    multiples = {k: to_baseline(summaries, k) for k in stack if k[1] != CEILING}
    multiples = {k: m for k, m in multiples.items() if m is not None}
    if multiples:
        low_key = min(multiples, key=multiples.get)
        found.append(Target(
            "every workload at least 3x the naive baseline (every concurrency)",
            f"lowest {times(multiples[low_key])} ({low_key[1]}, c={low_key[2]})",
            multiples[low_key] >= 3,
        ))  # fmt: skip
    return found
