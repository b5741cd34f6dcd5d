"""The benchmark's requests: what ``bench/wrk/workload.lua`` sends for each workload.

wrk runs the real script for a second per workload against a small server that
records every request; the recorded bodies must then be predict requests the service
accepts, and the uncached workloads must never repeat a body.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections import defaultdict

import pytest

from bench.wrk import WORKLOADS, command, errors, parse
from deploy.procs import free_port

pytestmark = pytest.mark.slow

IRIS = "/v1/models/iris/predict"
SENTIMENT = "/v1/models/sentiment/predict"
CHECKED_BODIES = 25  # per workload, posted to the real app


class _Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int):
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _record

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def sent():
    """workload -> the requests wrk sent for it in one second (method, path, headers, body)."""
    server = _Recorder(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    by_workload: dict[str, list] = defaultdict(list)
    try:
        for seed, workload in enumerate(WORKLOADS, start=1):
            done = subprocess.run(command(url, workload, 2, 1, seed), capture_output=True,
                                  text=True, timeout=60, check=True)
            numbers = parse(done.stdout)
            with server.lock:
                by_workload[workload], server.seen = server.seen, []
            assert errors(numbers) == 0, (workload, numbers)
            assert len(by_workload[workload]) >= int(numbers["requests"]) > 20, workload
    finally:
        server.shutdown()
        server.server_close()
    return by_workload


def _posts(requests, path=None):
    return [r for r in requests if r[0] == "POST" and (path is None or r[1] == path)]


def test_the_ceiling_is_a_plain_get_of_healthz(sent):
    assert {(method, path) for method, path, _, _ in sent["healthz"]} == {("GET", "/healthz")}


@pytest.mark.parametrize("workload, path", [
    ("iris-uncached", IRIS), ("sentiment-uncached", SENTIMENT), ("iris-no-cache", IRIS),
])  # fmt: skip
def test_uncached_workloads_never_send_the_same_body_twice(sent, workload, path):
    requests = sent[workload]
    assert _posts(requests, path) == requests
    bodies = [body for _, _, _, body in requests]
    assert len(set(bodies)) == len(bodies)


def test_the_cached_workload_repeats_a_few_flowers(sent):
    bodies = {body for _, _, _, body in _posts(sent["iris-cached"], IRIS)}
    assert 2 <= len(bodies) <= 8


def test_only_iris_no_cache_asks_to_go_past_the_cache(sent):
    for workload, requests in sent.items():
        asked = {headers.get("Cache-Control") for _, _, headers, _ in requests}
        assert asked == ({"no-cache"} if workload == "iris-no-cache" else {None}), workload


def test_mixed_sends_hot_and_cold_requests_to_both_models(sent):
    bodies = defaultdict(list)
    for _, path, _, body in _posts(sent["mixed"]):
        bodies[path].append(body)
    for path in (IRIS, SENTIMENT):
        assert len(bodies[path]) > len(set(bodies[path])) > 1, path  # repeats and new ones


@pytest.mark.parametrize("workload", [w for w in WORKLOADS if w != "healthz"])
def test_every_body_sent_is_a_predict_request_the_service_answers(sent, client, workload):
    for _, path, headers, body in _posts(sent[workload])[:CHECKED_BODIES]:
        assert headers["Content-Type"] == "application/json"
        answer = client.post(path, data=body, content_type="application/json")
        assert answer.status_code == 200, (body, answer.get_json())
        instances = json.loads(body)["instances"]
        assert len(answer.get_json()["predictions"]) == len(instances) == 1
