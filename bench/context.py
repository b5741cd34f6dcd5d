"""What a benchmark ran on: machine, versions and settings, for the report."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

from deploy.procs import ROOT, binary

PACKAGES = ("flask", "gunicorn", "gevent", "scikit-learn", "numpy", "redis", "flask-caching")


def _first_line(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = ((done.stdout or "") + (done.stderr or "")).strip().splitlines()
    return lines[0] if lines else ""


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115 - tiny file
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        total_kb = int(open("/proc/meminfo").readline().split()[1])  # noqa: SIM115
    except (OSError, ValueError, IndexError):
        return "unknown"
    return f"{total_kb / 1024 / 1024:.1f} GiB"


def _os_name() -> str:
    try:
        for line in open("/etc/os-release").read().splitlines():  # noqa: SIM115
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "os": _os_name(),
        "kernel": platform.release(),
        "load average (1, 5, 15 min) at start": load_average(),
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["wrk"] = _first_line([binary("wrk"), "--version"]).split(" [")[0]
    found["nginx"] = _first_line([binary("nginx"), "-v"])
    found["redis-server"] = _first_line([binary("redis-server"), "--version"]).split(" sha")[0]
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--", "service"])
    found["git commit"] = commit + (" (service/ has uncommitted changes)" if dirty and
                                    not dirty.startswith("unknown") else "")  # fmt: skip
    return found
