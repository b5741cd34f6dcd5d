"""``python -m bench.instructions``: CPU instructions per request, counted instead of timed.

A quick stack run on this machine moves by up to ~15% from one run to the next, so a
change worth a few percent cannot be seen in rps. Callgrind counts the instructions a
process executes: the same code and requests give the same count within ~1%, however
busy the machine is. This counts one worker's app (``bench/inprocess.py``: the WSGI app
called by 32 greenlets, Redis real, metrics in multiprocess mode, the request log at
``info`` to a file) over ``--requests`` requests after a warm-up, and prints the
instructions per request of each workload and their ratio to ``healthz``.

Gunicorn, NGINX, Redis's own work and the kernel (system calls) are not counted: the
figures are the app's part of a request, which is where a code change lands. With
``--against DIR`` the same requests are counted in another checkout too (for example
``git worktree add ../base HEAD~1``) and the change is printed beside them.

Needs valgrind and a C compiler (``scripts/setup.sh`` installs both); one count takes
~20 s, most of it the interpreter starting under valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

from deploy.procs import ROOT, free_port, port_open, redis_server, running
from loadtest.payloads import iris_cold, iris_hot, sentiment_cold, sentiment_hot

MODELS_DIR = Path(os.environ.get("INFER_MODELS_DIR") or ROOT / "models").resolve()
DRIVER = Path(__file__).resolve().parent / "inprocess.py"
WORK = ROOT / "reports" / "bench" / "instructions"
# The two client requests callgrind understands, as a library the driver loads.
SHIM_SOURCE = """\
#include <valgrind/callgrind.h>
void bench_count_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void bench_count_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""
WARM_REQUESTS = 100
_COLLECTED = re.compile(r"Collected : (\d+)")

Request = tuple[str, str, str]  # method, path, JSON body ("" for none)


def _predict(model: str, instance: Callable[[random.Random], object]):
    path = f"/v1/models/{model}/predict"
    return lambda rng: ("POST", path, json.dumps({"instances": [instance(rng)]}))


WORKLOADS: dict[str, Callable[[random.Random], Request]] = {
    "healthz": lambda rng: ("GET", "/healthz", ""),
    "iris-cached": _predict("iris", iris_hot),
    "iris-uncached": _predict("iris", iris_cold),
    "sentiment-cached": _predict("sentiment", sentiment_hot),
    "sentiment-uncached": _predict("sentiment", sentiment_cold),
}
DEFAULT_WORKLOADS = ("healthz", "iris-cached", "iris-uncached", "sentiment-uncached")


def plan(workload: str, requests: int, seed: int = 1) -> dict[str, list[Request]]:
    """The warm-up and the counted requests: the same for every checkout compared."""
    rng = random.Random(seed)
    make = WORKLOADS[workload]
    return {"warm": [make(rng) for _ in range(WARM_REQUESTS)],
            "measured": [make(rng) for _ in range(requests)]}


def collected(valgrind_output: str) -> int:
    """The instruction count callgrind prints when the process ends."""
    match = _COLLECTED.search(valgrind_output)
    if match is None:
        raise RuntimeError(f"no count in callgrind's output:\n{valgrind_output[-2000:]}")
    return int(match.group(1))


def build_shim(work: Path) -> Path:
    """Compile the client-request library (once; kept in ``work``)."""
    source, shim = work / "count.c", work / "libcount.so"
    if shim.exists() and source.exists() and source.read_text() == SHIM_SOURCE:
        return shim
    source.write_text(SHIM_SOURCE)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
    return shim


def count(code_root: Path, workload: str, requests: int, *, shim: Path, redis_url: str,
          work: Path) -> float:
    """Instructions per request of ``workload`` in the app of ``code_root``."""
    redis.Redis.from_url(redis_url).flushall()  # every count starts from an empty cache
    plan_file, log_file = work / f"{workload}.json", work / f"{workload}.log"
    plan_file.write_text(json.dumps(plan(workload, requests)))
    log_file.unlink(missing_ok=True)  # the request lines of this count only
    with tempfile.TemporaryDirectory(dir=work) as metrics_dir:
        env = {**os.environ, "PYTHONHASHSEED": "0", "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
               "INFER_REDIS_URL": redis_url, "INFER_MODELS_DIR": str(MODELS_DIR),
               "INFER_LOG_LEVEL": "info", "INFER_LOG_FILE": str(log_file)}
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             "--callgrind-out-file=/dev/null", sys.executable, str(DRIVER), str(code_root),
             str(shim), str(plan_file)],
            env=env, cwd=code_root, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{workload} in {code_root} failed:\n{result.stderr[-3000:]}")
    return collected(result.stderr) / requests


def table(rows: dict[str, dict[str, float]], trees: list[str]) -> str:
    """Markdown: instructions per request per tree, the change, the ratio to healthz."""
    head = ["workload", *(f"{tree} (instructions/request)" for tree in trees)]
    if len(trees) == 2:
        head.append("change")
    head += [f"x healthz, {tree}" for tree in trees if "healthz" in rows]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|--:" * (len(head) - 1) + "|"]
    for workload, by_tree in rows.items():
        cells = [workload, *(f"{by_tree[tree]:,.0f}" for tree in trees)]
        if len(trees) == 2:
            cells.append(f"{by_tree[trees[0]] / by_tree[trees[1]] - 1:+.1%}")
        if "healthz" in rows:
            cells += [f"{by_tree[tree] / rows['healthz'][tree]:.2f}" for tree in trees]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                        help=f"comma-separated, from: {', '.join(WORKLOADS)}")
    parser.add_argument("--requests", type=int, default=1000, help="counted per workload")
    parser.add_argument("--against", type=Path, help="another checkout to count beside this one")
    args = parser.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is missing: run scripts/setup.sh (make setup) as root")
    trees = {"this checkout": ROOT}
    if args.against is not None:
        trees[str(args.against)] = args.against.resolve()

    WORK.mkdir(parents=True, exist_ok=True)
    shim = build_shim(WORK)
    rows: dict[str, dict[str, float]] = {}
    port = free_port()
    with tempfile.TemporaryDirectory(dir=WORK) as tmp, \
            running(redis_server(port, Path(tmp)), ready=lambda: port_open(port)):
        redis_url = f"redis://127.0.0.1:{port}/0"
        for workload in workloads:
            for name, tree in trees.items():
                rows.setdefault(workload, {})[name] = count(
                    tree, workload, args.requests, shim=shim, redis_url=redis_url, work=WORK)
                print(f"{workload:20} {name}: {rows[workload][name]:,.0f} instructions/request",
                      flush=True)
    print()
    print(table(rows, list(trees)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
