"""Distributed Locust on one machine: one master and N workers, all on loopback.

    python -m loadtest.distributed --workers 2 -- --config loadtest/locust.conf -t 20s

Everything after ``--`` goes to the master. The master waits for every worker before
it starts, judges the SLO gates on the merged statistics, and its exit code is this
command's. Workers are stopped whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

# Below the kernel's ephemeral range, like every server the tests and the benchmark
# start: a port from bind(0) comes from that range, where any outgoing connection on
# the machine (a load generator's, NGINX's) can take it before the master binds it.
from deploy.procs import free_port

LOCUSTFILE = "loadtest/locustfile.py"
LOOPBACK = "127.0.0.1"


def master_command(port: int, workers: int, extra: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless",
        "--master", "--master-bind-host", LOOPBACK, "--master-bind-port", str(port),
        "--expect-workers", str(workers), "--expect-workers-max-wait", "60",
        *extra,
    ]  # fmt: skip


def worker_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--worker",
        "--master-host", LOOPBACK, "--master-port", str(port),
    ]  # fmt: skip


def run(workers: int, extra: Sequence[str], timeout: float | None = None) -> int:
    """Run the master and ``workers`` workers to the end; the master's exit code."""
    port = free_port()
    master = subprocess.Popen(master_command(port, workers, extra))
    started: list[subprocess.Popen] = []
    try:
        started = [subprocess.Popen(worker_command(port)) for _ in range(workers)]
        try:
            return master.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"distributed run still going after {timeout} s; stopped", file=sys.stderr)
            return 124
    finally:
        for process in [master, *started]:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=None, help="give up after seconds")
    parser.add_argument("master_args", nargs=argparse.REMAINDER, help="-- then master options")
    args = parser.parse_args(argv)
    extra = args.master_args[1:] if args.master_args[:1] == ["--"] else args.master_args
    return run(args.workers, extra, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
