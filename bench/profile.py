"""``python -m bench.profile``: where a replica's CPU time goes under load.

Starts the stack like ``make bench`` does, drives it with wrk (``mixed`` at c=64 by
default), samples one replica's Gunicorn master and workers with py-spy, and writes
``bench/PROFILE.md``: the share of samples per layer (model, cache, metrics, JSON, ...)
and the busiest functions. The raw collapsed stacks stay in ``reports/bench/``.
py-spy must be installed (``pip install py-spy``) and allowed to ptrace (root here).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import context, systems
from bench.wrk import WORKLOADS, command

OUT = Path(__file__).resolve().parent / "PROFILE.md"

# (layer, path fragments); a sample counts for the innermost frame that matches one.
LAYERS = (
    ("model: service/models, scikit-learn, numpy, scipy",
     ("sklearn/", "numpy/", "scipy/", "service/models/")),
    ("cache: Redis client, Flask-Caching", ("redis/", "flask_caching/", "service/cache")),
    (
        "metrics: prometheus",
        ("prometheus_client/", "prometheus_flask_exporter/", "service/metrics"),
    ),
    ("validation: pydantic", ("pydantic/", "pydantic_core/")),
    ("request log: logging", ("logging/", "service/request_log")),
    ("JSON", ("json/", "orjson")),
    ("micro-batcher", ("service/batching",)),
    ("Flask / Werkzeug / OpenAPI", ("flask/", "werkzeug/", "flask_openapi3/", "flask_cors/")),
    ("Gunicorn / gevent (I/O, scheduling)", ("gunicorn/", "gevent/", "greenlet")),
    ("other service code", ("service/",)),
)
OTHER = "other"


def listening_pids(port: int) -> set[int]:
    """Processes holding the loopback listening socket on ``port`` (master and workers)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inode = fields[9]
    if inode is None:
        raise RuntimeError(f"nothing listens on port {port}")
    holders = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(f"socket:[{inode}]" == str(fd.readlink()) for fd in fd_dir.iterdir()):
                holders.add(int(fd_dir.parent.name))
        except OSError:
            continue
    return holders


def master_pid(port: int) -> int:
    """The Gunicorn master of the replica on ``port``: the holder whose parent is not one."""
    holders = listening_pids(port)
    for pid in holders:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if parent not in holders:
            return pid
    raise RuntimeError(f"no master among {sorted(holders)}")


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, fragments in LAYERS:
            if any(fragment in frame for fragment in fragments):
                return layer
    return OTHER


def summarise(collapsed: str) -> tuple[Counter, Counter, int]:
    """Samples per layer and per innermost function, from py-spy's raw (collapsed) output."""
    layers: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        layers[layer_of(frames)] += int(count)
        leaves[frames[-1]] += int(count)
        total += int(count)
    return layers, leaves, total


HEADER = [
    "# Where a replica's time goes",
    "",
    "Written by `python -m bench.profile` (`make bench-profile`). py-spy sampled one replica's",
    "Gunicorn master and workers while wrk loaded the stack through NGINX. Idle time (waiting",
    "on sockets) is not sampled, so the shares are of busy time; a sample counts for the",
    "innermost frame that belongs to a layer. Time inside `send`/`recv` is the kernel's",
    "loopback TCP work, charged to the sender; on a busy machine it also absorbs the time a",
    "runnable process waited for a core.",
    "",
]


def section(layers: Counter, leaves: Counter, total: int, what: str) -> list[str]:
    return [
        f"## {what}",
        "",
        f"{total} samples.",
        "",
        "| layer | share of busy samples |",
        "|---|--:|",
        *(f"| {layer} | {count / total:.1%} |" for layer, count in layers.most_common()),
        "",
        "| busiest innermost function (file:line) | share |",
        "|---|--:|",
        *(f"| `{leaf}` | {count / total:.1%} |" for leaf, count in leaves.most_common(12)),
        "",
    ]


def record(py_spy: str, stack: systems.System, workload: str, args, raw: Path) -> None:
    """Sample the first replica for ``args.seconds`` while wrk runs ``workload``."""
    replica_port = int(stack.settings["replica ports"].split(",")[0])
    load = subprocess.Popen(
        command(stack.url, workload, args.concurrency, args.seconds + 3, int(time.time())),
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        subprocess.run(
            [py_spy, "record", "--pid", str(master_pid(replica_port)), "--subprocesses",
             "--format", "raw", "--rate", "200", "--nonblocking",
             "--duration", str(args.seconds), "--output", str(raw)],
            check=True, timeout=args.seconds + 60,
        )  # fmt: skip
    finally:
        load.wait(args.seconds + 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--workloads", default="iris-cached,iris-uncached,sentiment-uncached",
                        help="comma-separated; one section each")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--log-level", default="info", help="the stack's INFER_LOG_LEVEL")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {WORKLOADS}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = systems.ROOT / "reports" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    systems.ensure_models()
    lines = list(HEADER)
    with systems.stack(work, {"INFER_LOG_LEVEL": args.log_level}) as stack:
        for workload in workloads:
            raw = work / f"profile-{workload}.collapsed.txt"
            record(py_spy, stack, workload, args, raw)
            what = (f"{workload}: wrk c={args.concurrency} for {args.seconds} s, "
                    f"INFER_LOG_LEVEL={args.log_level}")  # fmt: skip
            lines += section(*summarise(raw.read_text()), what)
    lines += [f"Load average at the end: {context.load_average()}.", ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
