"""The optional per-client rate limit (INFER_RATE_LIMIT_RPS), in front of the real replicas."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from deploy.procs import Server, binary, http_ok, running
from deploy.stack import render_nginx
from tests.e2e.conftest import stack_ports

pytestmark = pytest.mark.slow


def test_a_client_over_its_rate_gets_429_in_the_json_shape_and_the_rest_pass(stack, tmp_path):
    ports = stack_ports(["nginx", "status"], replicas=0)
    port, status_port = ports["nginx"], ports["status"]
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx(
            stack.replica_addresses,
            listen=f"127.0.0.1:{port}",
            status_listen=f"127.0.0.1:{status_port}",
            limits=stack.config.limits,
            rate_limit_rps=2,
            pid_file=str(tmp_path / "nginx.pid"),
            temp_dir=str(tmp_path),
            access_log=str(tmp_path / "access.log"),
        )
    )
    nginx = Server(
        name="nginx-rate-limited",
        args=[
            binary("nginx"),
            "-e",
            "stderr",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-g",
            "daemon off;",
        ],
        log_path=tmp_path / "nginx.log",
    )
    with running(nginx, lambda: http_ok(f"http://127.0.0.1:{port}/nginx-healthz")):
        # burst = 2 x rate = 4: a quick run of 12 requests must overflow it.
        responses = [
            requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=5) for _ in range(12)
        ]

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] >= 1 and statuses[429] >= 1, statuses
    assert set(statuses) == {200, 429}
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["Content-Type"] == "application/json"
    assert limited.json()["error"]["code"] == "too_many_requests"
    assert not (tmp_path / "nginx.pid").exists()
