"""``bench/REPORT.md`` and its plots, from the summaries of one benchmark run."""

from __future__ import annotations

from pathlib import Path

from bench.results import (
    REFERENCE_CONCURRENCY,
    Key,
    Spread,
    Summary,
    percent,
    targets,
    times,
    to_baseline,
)
from bench.results import to_ceiling as share_of_ceiling
from bench.wrk import WORKLOADS

SYSTEM_TITLES = {
    "stack": "stack (NGINX -> 2 gevent replicas, Redis cache, micro-batching)",
    "naive": "naive (Flask, one predict per request, gunicorn sync -w 5, direct)",
}


def _spread(spread: Spread, digits: int = 0) -> str:
    return f"{spread.median:,.{digits}f} ({spread.low:,.{digits}f}-{spread.high:,.{digits}f})"


def reference_table(summaries: dict[Key, Summary]) -> list[str]:
    c = REFERENCE_CONCURRENCY
    lines = [
        f"| workload (c={c}) | stack rps | stack p99 ms | stack CPU ms/req | naive rps "
        "| naive p99 ms | naive CPU ms/req | stack vs naive | stack vs ceiling |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for workload in WORKLOADS:
        stack, naive = summaries.get(("stack", workload, c)), summaries.get(("naive", workload, c))
        if stack is None:
            continue
        naive_rps = f"{naive.rps.median:,.0f}" if naive else "-"
        naive_p99 = f"{naive.p99_ms.median:,.1f}" if naive else "-"
        naive_cpu = f"{naive.cpu_ms.median:.2f}" if naive else "-"
        lines.append(
            f"| {workload} | {stack.rps.median:,.0f} | {stack.p99_ms.median:,.1f} "
            f"| {stack.cpu_ms.median:.2f} | {naive_rps} | {naive_p99} | {naive_cpu} "
            f"| {times(to_baseline(summaries, stack_key(stack)))} "
            f"| {percent(share_of_ceiling(summaries, stack_key(stack)))} |"
        )
    return lines


def stack_key(summary: Summary) -> Key:
    return (summary.system, summary.workload, summary.concurrency)


def full_table(summaries: dict[Key, Summary]) -> list[str]:
    lines = [
        "| system | workload | c | rps: median (min-max) | p50 ms | p99 ms: median (min-max) "
        "| errors | CPU ms/req | vs ceiling | vs naive |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, s in summaries.items():
        baseline = to_baseline(summaries, key) if s.system == "stack" else None
        lines.append(
            f"| {s.system} | {s.workload} | {s.concurrency} | {_spread(s.rps)} "
            f"| {s.p50_ms.median:,.1f} | {_spread(s.p99_ms, 1)} | {s.errors} "
            f"| {s.cpu_ms.median:.2f} "
            f"| {percent(share_of_ceiling(summaries, key))} | {times(baseline)} |"
        )
    return lines


INTERNALS = (
    "iris batch size", "iris queue wait ms", "sentiment batch size",
    "sentiment queue wait ms", "cache hit ratio", "shed (503)",
)  # fmt: skip


def internals_table(summaries: dict[Key, Summary]) -> list[str]:
    """The stack's own view: batch sizes, queue waits, hit ratio and sheds per run."""
    lines = [
        "| workload | c | " + " | ".join(INTERNALS) + " |",
        "|---|--:|" + "--:|" * len(INTERNALS),
    ]
    for (system, workload, concurrency), summary in summaries.items():
        if system != "stack" or not summary.internals:
            continue
        cells = [_number(summary.internals.get(name), whole=name.startswith("shed"))
                 for name in INTERNALS]  # fmt: skip
        lines.append(f"| {workload} | {concurrency} | " + " | ".join(cells) + " |")
    return lines


def _number(value: float | None, whole: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 and not whole else f"{value:,.0f}"


def target_table(summaries: dict[Key, Summary]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    verdicts = {True: "yes", False: "**no**", None: "not measured"}
    for target in targets(summaries):
        lines.append(f"| {target.goal} | {target.measured} | {verdicts[target.met]} |")
    return lines


def plot(summaries: dict[Key, Summary], out_dir: Path) -> list[Path]:
    """Throughput and p99 against concurrency, one line per system and workload."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    charts = (("throughput.png", "rps", "requests / s"), ("p99.png", "p99_ms", "p99 latency, ms"))
    written = []
    for filename, field, label in charts:
        figure, axes = pyplot.subplots(figsize=(9, 5.5), dpi=110)
        for (system, workload), group in _series(summaries).items():
            xs = [s.concurrency for s in group]
            spreads = [getattr(s, field) for s in group]
            medians = [sp.median for sp in spreads]
            errors = [[m - sp.low for m, sp in zip(medians, spreads, strict=True)],
                      [sp.high - m for m, sp in zip(medians, spreads, strict=True)]]  # fmt: skip
            # one colour per workload; solid for the stack, dashed for the baseline
            axes.errorbar(xs, medians, yerr=errors, marker="o", capsize=3,
                          color=f"C{WORKLOADS.index(workload)}",
                          linestyle="-" if system == "stack" else "--",
                          label=f"{system}: {workload}")  # fmt: skip
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({k[2] for k in summaries}))
        axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        if field == "p99_ms":
            axes.set_yscale("log")
        axes.set_xlabel("concurrent connections (wrk -c)")
        axes.set_ylabel(label)
        axes.set_title(f"{label} against concurrency (median of runs, bars: min-max)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7, ncol=2)
        figure.tight_layout()
        path = out_dir / filename
        figure.savefig(path)
        pyplot.close(figure)
        written.append(path)
    return written


def _series(summaries: dict[Key, Summary]) -> dict[tuple[str, str], list[Summary]]:
    series: dict[tuple[str, str], list[Summary]] = {}
    for (system, workload, _c), summary in sorted(summaries.items()):
        series.setdefault((system, workload), []).append(summary)
    for group in series.values():
        group.sort(key=lambda s: s.concurrency)
    return series


def render(summaries: dict[Key, Summary], context: dict[str, dict[str, str]],
           notes: list[str]) -> str:  # fmt: skip
    """The whole report as Markdown; ``context`` holds the machine, versions and settings."""
    lines = [
        "# Benchmark report",
        "",
        "Written by `make bench` (`python -m bench`); the raw runs are in `bench/results.json`.",
        "Every figure is the median of the runs, with the min-max range where shown. "
        "`vs ceiling` is throughput over the stack's trivial route (`/healthz` through NGINX) at "
        "the same concurrency; `vs naive` is throughput over the naive baseline's for the same "
        "workload and concurrency. `CPU ms/req` is the CPU time all of a system's processes "
        "(NGINX, replicas, Redis; or the naive workers) used per request, summed over cores: "
        "less sensitive to a busy machine than throughput, and 2 cores give 2,000 ms a second.",
        "",
        "Systems:",
        *(f"- {title}" for title in SYSTEM_TITLES.values()),
        "",
        f"## At c={REFERENCE_CONCURRENCY}",
        "",
        *reference_table(summaries),
        "",
        "## Targets (issue 5)",
        "",
        *target_table(summaries),
        "",
        "## Plots",
        "",
        "![throughput against concurrency](throughput.png)",
        "",
        "![p99 latency against concurrency](p99.png)",
        "",
        "## Inside the stack",
        "",
        "From the replicas' own `/metrics`, read before and after each run (median over the "
        "runs): the mean instances per model call, the mean time a request waited for its "
        "batch, the share of cache lookups that hit, and requests shed with 503.",
        "",
        *internals_table(summaries),
        "",
        "## Every measurement",
        "",
        *full_table(summaries),
        "",
        "## How it was measured",
        "",
        *notes,
        "",
    ]
    for title, values in context.items():
        lines += [f"### {title}", "", "| | |", "|---|---|"]
        lines += [f"| {name} | `{value}` |" for name, value in values.items()]
        lines.append("")
    return "\n".join(lines)
