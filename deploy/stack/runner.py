"""Run a rendered stack in the foreground with honcho.

Honcho starts every Procfile process in its own process group, stops them all
(TERM, then KILL after 5 s) on Ctrl-C, SIGTERM or when any one exits. This module
adds what honcho does not: refusing to start over a running stack or a busy port,
announcing the URLs once everything answers, and removing stale pid files.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Message, Printer

from deploy.stack.config import ROOT, StackConfig
from deploy.stack.render import RunDir

READY_TIMEOUT = 180.0


class StackError(RuntimeError):
    """The stack cannot start; the message says what to change."""


def procfile_processes(run: RunDir, only: Iterable[str] | None = None) -> dict[str, str]:
    """Process name -> command from the rendered Procfile, optionally a subset."""
    processes = dict(parse_procfile(run.procfile.read_text()).processes)
    if only is None:
        return processes
    wanted = list(only)
    unknown = sorted(set(wanted) - set(processes))
    if unknown:
        raise StackError(f"no such process in {run.procfile}: {', '.join(unknown)}")
    return {name: processes[name] for name in wanted}


def health_urls(config: StackConfig, names: Iterable[str]) -> dict[str, str]:
    """What must answer 200 before a started process counts as ready."""
    host = config.host
    urls = {
        "nginx": f"http://{host}:{config.nginx_port}/nginx-healthz",
        "nginx_exporter": f"http://{host}:{config.nginx_exporter_port}/metrics",
        "prometheus": f"http://{host}:{config.prometheus_port}/-/ready",
    }
    for index, address in enumerate(config.replica_addresses, start=1):
        urls[f"app{index}"] = f"http://{address}/readyz"
    return {name: urls[name] for name in names if name in urls}


def log_files(run: RunDir, names: Iterable[str]) -> dict[str, Path]:
    """Logs the started processes write themselves; the console shows only their warnings."""
    names = list(names)
    files = {name: run.replica_log(int(name[3:])) for name in names
             if name.startswith("app") and name[3:].isdigit()}
    if "nginx" in names:
        files["nginx access"] = run.nginx_access_log
    return files


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except OSError:
        return False


def port_taken(host: str, port: int) -> bool:
    """Whether the stack could not bind ``port`` now (the check behind `check_free`)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_free(config: StackConfig, names: Iterable[str]) -> None:
    """Fail early, naming the setting, when a port the stack needs is taken."""
    ports = {
        "redis": [("INFER_REDIS_PORT", config.redis_port)],
        "nginx": [
            ("INFER_NGINX_PORT", config.nginx_port),
            ("INFER_NGINX_STATUS_PORT", config.nginx_status_port),
        ],
        "nginx_exporter": [("INFER_NGINX_EXPORTER_PORT", config.nginx_exporter_port)],
        "prometheus": [("INFER_PROMETHEUS_PORT", config.prometheus_port)],
    }
    for index, port in enumerate(config.replica_ports, start=1):
        ports[f"app{index}"] = [(f"INFER_BASE_PORT+{index - 1}", port)]
    taken = [
        f"{setting}={port}"
        for name in names
        for setting, port in ports.get(name, [])
        if port_taken(config.host, port)
    ]
    if taken:
        raise StackError(
            "ports already in use: "
            + ", ".join(taken)
            + " (is a stack already running? otherwise choose other ports)"
        )


def clear_stale_pid_files(run: RunDir) -> None:
    """Remove pid files whose process is gone; refuse if one is still alive."""
    for pid_file in run.pid_files():
        text = pid_file.read_text().strip()
        if text.isdigit() and _alive(int(text)):
            raise StackError(f"{pid_file} names running process {text}: stop that stack first")
        pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _announce_when_ready(config: StackConfig, names: list[str], events) -> None:
    """Tell the honcho log once every started process answers (or which do not)."""
    pending = health_urls(config, names)
    deadline = time.monotonic() + READY_TIMEOUT
    while pending and time.monotonic() < deadline:
        pending = {name: url for name, url in pending.items() if not _answers(url)}
        if pending:
            time.sleep(0.5)
    if pending:
        text = f"still not answering after {READY_TIMEOUT:.0f}s: {', '.join(pending)}\n"
    else:
        text = "ready:\n" + "".join(f"  {name:<16} {url}\n" for name, url in config.urls().items())
    events.put(Message("line", text, datetime.datetime.now(), "stack", None))


def run_stack(config: StackConfig, run: RunDir, only: Iterable[str] | None = None) -> int:
    """Start the Procfile's processes and block until they stop; the exit code."""
    processes = procfile_processes(run, only)
    check_free(config, processes)
    clear_stale_pid_files(run)

    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    for name, command in processes.items():
        manager.add_process(name, command, env=os.environ.copy(), cwd=str(ROOT))
    print("starting " + ", ".join(processes) + f" (run dir {run.path})", flush=True)
    for name, url in config.urls().items():
        print(f"  {name:<16} {url}", flush=True)
    for name, path in log_files(run, processes).items():
        print(f"  {name + ' log':<16} {path}", flush=True)
    announcer = threading.Thread(
        target=_announce_when_ready,
        args=(config, list(processes), manager.events),
        daemon=True,
    )
    announcer.start()
    try:
        manager.loop()
    finally:
        # honcho SIGKILLs what ignores TERM for 5 s; such a process leaves its pid file.
        for pid_file in run.pid_files():
            with contextlib.suppress(OSError, ValueError):
                if not _alive(int(pid_file.read_text().strip())):
                    pid_file.unlink()
    return manager.returncode or 0
