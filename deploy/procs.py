"""Real processes for the benchmark, the distributed load test and the tests.

Every server started here binds a free loopback port, is waited for until it
answers, and is stopped (TERM, then KILL) whatever its caller did. It lives beside
the stack's own runner, not under ``tests/``, because ``bench`` and ``loadtest`` are
installed packages and need it as much as the tests do.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack.runner import port_taken

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"


SERVER_PORTS = range(20000, 32000)
"""Where servers started here listen: below the kernel's ephemeral range (32768-60999 by
default). Every outgoing connection (NGINX to a replica, a client to Redis, wrk) takes
its local port from that range, and once took a benchmark replica's port between the
check and the replica's own bind, when ports still came from ``bind(0)``, which answers
from that range too."""

_pick = random.Random()  # not the global generator, which tests may seed


def free_ports(count: int, *, consecutive: int = 0) -> list[int]:
    """``count`` distinct loopback ports that can all be bound now (the stack's own check),
    the first ``consecutive`` of them in a row (replicas from ``INFER_BASE_PORT`` on)."""
    for _ in range(200):
        base = _pick.randrange(SERVER_PORTS.start, SERVER_PORTS.stop - consecutive)
        wanted = list(range(base, base + consecutive))
        while len(wanted) < count:
            port = _pick.choice(SERVER_PORTS)
            if port not in wanted:
                wanted.append(port)
        if not any(port_taken("127.0.0.1", port) for port in wanted):
            return wanted
    raise RuntimeError(f"found no {count} free ports in {SERVER_PORTS}")


def free_port() -> int:
    """One loopback port that can be bound now (see ``free_ports``)."""
    return free_ports(1)[0]


def binary(name: str) -> str:
    """Path of an executable from the venv, PATH or /usr/sbin; fails loudly when missing."""
    for candidate in (VENV_BIN / name, Path("/usr/sbin") / name, Path("/usr/bin") / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `make setup`")
    return found


def nginx_syntax_ok(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on ``conf`` with ``prefix`` as its directory; errors on stderr."""
    return subprocess.run(
        [binary("nginx"), "-t", "-e", "stderr", "-p", str(prefix), "-c", str(conf)],
        capture_output=True, text=True, timeout=30, check=False,
    )


class ProcessExited(RuntimeError):
    """A server died while we waited for it: no point waiting out the timeout."""


def settled(read, quiet: float = 1.5, timeout: float = 15.0, what: str = "a value"):
    """``read()`` once it has returned the same value for ``quiet`` seconds.

    For figures that arrive late: a replica's scrape shows its other workers' metric
    updates up to a second after the requests (service/metrics_buffer.py).
    """
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise TimeoutError(f"{what} did not settle in {timeout} s: last {value!r}")


def wait_until(check, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``check`` until it returns a truthy value, or raise TimeoutError.

    Any error from ``check`` means "not yet", except ``ProcessExited``, which ends the wait.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ProcessExited:
            raise
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}: {last_error!r}")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Server:
    """A started process; ``stop`` ends it and its process group."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    def start(self) -> Server:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            list(self.args),
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(5)
        # children left in the group (e.g. gunicorn workers) go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines) if self.log_path else ""


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file; empty when there is none (yet)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running(server: Server, ready, timeout: float = 30.0) -> Iterator[Server]:
    """Start ``server``, wait for ``ready()``, yield it, and always stop it."""
    server.start()
    try:
        try:
            wait_until(lambda: _died(server) if not server.alive() else ready(), timeout,
                       what=f"{server.name} to be ready")
        except TimeoutError as exc:
            raise RuntimeError(f"{server.name} did not become ready\n{server.log_tail()}") from exc
        yield server
    finally:
        server.stop()


def _died(server: Server) -> bool:
    raise ProcessExited(f"{server.name} exited early\n{server.log_tail()}")


def redis_server(port: int, workdir: Path, maxmemory: str = "64mb") -> Server:
    """A throwaway Redis on ``port``: LRU-bounded, no persistence."""
    return Server(
        name=f"redis:{port}",
        args=[
            binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--maxmemory", maxmemory,
            "--maxmemory-policy", "allkeys-lru", "--dir", str(workdir),
        ],
        log_path=workdir / f"redis-{port}.log",
    )


def gunicorn_server(port: int, workdir: Path, env: Mapping[str, str] | None = None,
                    workers: int = 2) -> Server:
    """One replica, started exactly as the stack starts it: the project's gunicorn config
    and the app factory, with its own multiprocess metrics directory."""
    return Server(
        name=f"gunicorn:{port}",
        args=[binary("gunicorn"), "-c", str(ROOT / "service" / "gunicorn_conf.py"),
              "service:create_app()"],
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{port}"),
            "INFER_HOST": "127.0.0.1",
            "INFER_PORT": str(port),
            "INFER_WORKERS": str(workers),
            **(env or {}),
        },
        log_path=workdir / f"gunicorn-{port}.log",
    )
