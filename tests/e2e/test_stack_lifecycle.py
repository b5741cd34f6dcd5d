"""`python -m deploy.stack up` (what `make up` runs): it starts, answers, and stops clean."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from deploy.procs import ROOT, port_open, wait_until
from tests.e2e.conftest import stack_environ

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_serves_through_nginx_and_sigterm_leaves_no_process_port_or_pid_file(tmp_path):
    environ = stack_environ(tmp_path, replicas=1)
    run_dir = tmp_path / "run"
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "deploy.stack", "up", "--run-dir", str(run_dir)],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ports = [
        int(environ[name])
        for name in (
            "INFER_BASE_PORT",
            "INFER_NGINX_PORT",
            "INFER_NGINX_STATUS_PORT",
            "INFER_NGINX_EXPORTER_PORT",
            "INFER_PROMETHEUS_PORT",
            "INFER_REDIS_PORT",
        )
    ]
    try:
        wait_until(
            lambda: "| ready:" in output.read_text() or up.poll() is not None,
            150,
            interval=0.2,
            what="the stack to announce it is ready",
        )
        assert up.poll() is None, output.read_text()[-3000:]
        nginx = f"http://127.0.0.1:{environ['INFER_NGINX_PORT']}"
        answer = requests.post(
            f"{nginx}/v1/models/iris/predict",
            json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Upstream"] == f"127.0.0.1:{environ['INFER_BASE_PORT']}"
        # the replica writes its request lines itself; the console only names the file
        request_id = answer.headers["X-Request-ID"]
        replica_log = run_dir / "app1" / "service.log"
        wait_until(lambda: request_id in replica_log.read_text(), 10,
                   what="the request line in the replica's log file")
        assert request_id not in output.read_text()
        assert str(replica_log) in output.read_text()
        assert list(run_dir.rglob("*.pid")), "nginx writes its pid file in the run dir"

        up.send_signal(signal.SIGTERM)
        assert up.wait(30) == 128 + signal.SIGTERM  # honcho's exit code for a TERM stop
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(5)

    text = output.read_text()
    started = [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", text)]
    assert len(started) == 5, text[-3000:]  # redis, app1, nginx, exporter, prometheus
    wait_until(
        lambda: not any(_alive(pid) for pid in started), 10, what="every started process to be gone"
    )
    assert not [port for port in ports if port_open(port)]
    assert not list(run_dir.rglob("*.pid"))
