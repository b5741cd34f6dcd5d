"""``python -m bench``: measure the stack and the naive baseline, write the report.

    python -m bench                      # the full run: about 10-12 minutes
    python -m bench --duration 2 --rounds 1 --concurrency 64   # a quick look
    python -m bench --report-only        # redraw REPORT.md and plots from results.json

Rounds are interleaved (every concurrency, workload and system once per round) so a
slow drift in the machine's load touches both systems alike.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path

from bench import context, report, systems
from bench.results import summarise
from bench.wrk import DEFAULT_WORKLOADS, WORKLOADS, WRK_TIMEOUT, Sample, measure

OUT_DIR = Path(__file__).resolve().parent
WORK_DIR = systems.ROOT / "reports" / "bench"
WARMUP_SECONDS = 3.0
CLEAN_TRIES = 6
SYSTEMS = ("stack", "naive")

NOTES = [
    "- Load generator: `wrk -t1` with `bench/wrk/workload.lua`, on the same 2-core machine as "
    "the servers, so client and servers share the CPU. wrk's `--timeout` is "
    f"{WRK_TIMEOUT}, so slow answers are measured rather than dropped.",
    "- `healthz` is the trivial-route ceiling (`GET /healthz`); on the naive side it is the "
    "naive app's own `/healthz`. `iris-cached` cycles over 8 flowers, so all but the first "
    "few requests are cache hits. `iris-uncached` and `sentiment-uncached` send inputs made "
    "unique by a per-run seed, the wrk thread and a counter: no cache can answer them. "
    "`mixed` is 35% cached iris, 25% uncached iris, 20% cached and 20% uncached sentiment. "
    "One instance per request throughout.",
    "- The stack runs as `make up` starts it (`python -m deploy.stack up`), on free ports, with "
    "only Redis, the replicas and NGINX (no Prometheus or exporter). Its Redis keeps its "
    "entries across runs; only unique inputs guarantee misses.",
    "- The naive baseline is reached directly, without NGINX: that saves it a proxy hop, so "
    "the stack's multiples are if anything understated.",
    "- Before measuring, each system gets unrecorded warm-up runs: `healthz` at c=64 until "
    "one has no errors (right after start NGINX may still hold the replicas as failed from "
    "their boot and answer 502), then 3 s of `mixed`.",
    "- The stack logs as `make up` does (`INFER_LOG_LEVEL=info`: one JSON line per predict "
    "request, written by each replica to its own file in the run dir) unless `--log-level` "
    "says otherwise. In three quick pairs here at c=64 (`aae2aa7`) the line cost ~0.01-0.03 ms "
    "of CPU per predict request (medians over the pairs; single pairs differed by -0.04 to "
    "+0.08 ms), 34,000 of an uncached iris request's 920,000 instructions in the app.",
    "- Models: the stack predicts through each model's lean scorer (numpy over the fitted "
    "estimator's parameters, checked against it when loaded; docs/architecture.md); the naive "
    "baseline calls scikit-learn's `predict_proba` per request, as such examples do. In-process "
    "one iris row costs 0.37 ms through `predict_proba` and 0.016 ms lean, one text of the "
    "corpus's median length 1.0 and 0.11 ms, so part of each multiple over naive is the "
    "scorer, not batching or the cache. "
    "`INFER_LEAN_SCORERS=false make bench` measures the stack with the estimators.",
    "- Noise: other people's test suites may run on this machine at the same time. The load "
    "average at the start says how busy it was before; the one at the end is mostly the "
    "benchmark's own (wrk, NGINX, the Gunicorn workers and Redis make about 4-5 on 2 "
    "cores). `CPU ms/req` moves far less with noise than rps. Treat rps differences under "
    "about 15% as noise.",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per measurement (3)")
    parser.add_argument("--concurrency", default="16,64,256", help="wrk -c values (16,64,256)")
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                        help="which workloads (default: all but iris-no-cache)")
    parser.add_argument("--systems", default="stack,naive",
                        help="stack, naive, or stack,naive (the default)")  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", help="the stack's INFER_LOG_LEVEL (default info, as make up)"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where REPORT.md goes")
    parser.add_argument("--report-only", action="store_true",
                        help="only redraw the report from <out>/results.json")  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> dict:
    """Start the systems, measure every combination, and return the raw results."""
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    workloads = args.workloads.split(",")
    wanted = args.systems.split(",")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    systems.ensure_models()
    facts = {"machine": context.machine(), "versions": context.versions()}
    samples: list[Sample] = []
    started = time.monotonic()
    seed = int(time.time())
    with (
        systems.stack(WORK_DIR, {"INFER_LOG_LEVEL": args.log_level})
        if "stack" in wanted
        else contextlib.nullcontext() as stack,
        systems.naive(WORK_DIR) if "naive" in wanted else contextlib.nullcontext() as naive,
    ):
        live = [s for s in (stack, naive) if s is not None]
        for system in live:
            system.settings["warm-up runs until a clean one"] = str(warm_up(system, seed))
        for round_ in range(1, args.rounds + 1):
            for concurrency in concurrencies:
                for workload in workloads:
                    for system in live:
                        seed += 1
                        sample = measure(system, workload, concurrency,
                                         args.duration, round_, seed)  # fmt: skip
                        samples.append(sample)
                        print(f"[{time.monotonic() - started:5.0f}s] round {round_} "
                              f"{system.name:5} {workload:18} c={concurrency:<3} "
                              f"{sample.rps:8.0f} rps  p50 {sample.p50_ms:7.1f} ms  "
                              f"p99 {sample.p99_ms:7.1f} ms  errors {sample.errors}",
                              flush=True)  # fmt: skip
        facts["settings: stack"] = stack.settings if stack else {}
        facts["settings: naive"] = naive.settings if naive else {}
    facts["machine"]["load average (1, 5, 15 min) at end"] = context.load_average()
    facts["settings: benchmark"] = {
        "duration per run": f"{args.duration:g} s",
        "rounds": str(args.rounds),
        "concurrency": args.concurrency,
        "wrk threads": "1",
        "wrk timeout": WRK_TIMEOUT,
        "wall time": f"{time.monotonic() - started:.0f} s",
    }
    return {"context": facts, "samples": [dataclasses.asdict(s) for s in samples]}


def warm_up(system: systems.System, seed: int) -> int:
    """Unrecorded runs until the trivial route answers without errors; how many it took.

    Right after start NGINX may still hold both replicas as failed (they refused
    connections while booting) and answer 502 for a few seconds; no measurement should
    see that.
    """
    tries = 1
    while measure(system, "healthz", 64, 2, 0, seed).errors and (tries < CLEAN_TRIES):
        tries += 1
    measure(system, "mixed", 64, WARMUP_SECONDS, 0, seed)
    return tries


def write_report(results: dict, out: Path) -> Path:
    summaries = summarise(Sample(**s) for s in results["samples"])
    report.plot(summaries, out)
    path = out / "REPORT.md"
    path.write_text(report.render(summaries, results["context"], NOTES))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for option, names, known in (("--systems", args.systems, SYSTEMS),
                                 ("--workloads", args.workloads, WORKLOADS)):  # fmt: skip
        unknown = sorted(set(names.split(",")) - set(known))
        if unknown:  # refused now, not after the servers start (or measured as nothing)
            parser.error(f"{option}: unknown {unknown}; comma-separated, from {list(known)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    if args.report_only:
        results = json.loads(results_path.read_text())
    else:
        results = run(args)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {write_report(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
