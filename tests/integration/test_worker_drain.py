"""A stopping worker closes its idle keep-alive connections and finishes what is in flight.

Real Gunicorn, one worker, a graceful timeout (30 s) far longer than a stop may take
here: a worker held by an idle connection would be killed at 30 s, skipping
``worker_exit`` (and so its pending cache writes).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
import urllib.parse

from deploy.procs import wait_until

GRACEFUL_TIMEOUT = 30
# Gunicorn's run loop looks at the worker's state once a second, and then at its open
# connections once a second: a stop takes 1-2 s when nothing holds it.
STOP_SECONDS = 5.0
IRIS = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


def _one_worker(start_replica):
    url, server = start_replica(INFER_WORKERS="1", INFER_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT))
    return urllib.parse.urlsplit(url).port, server


def _idle_keep_alive_connection(port: int) -> http.client.HTTPConnection:
    """A connection that has had one answer and stays open, waiting for its next request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    assert not response.will_close
    return connection


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF); waits at most the socket's timeout."""
    return sock.recv(1) == b""


def _stop_in_time(server) -> None:
    """SIGTERM the master; it must exit with 0 within STOP_SECONDS."""
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.process.wait(GRACEFUL_TIMEOUT + 10) == 0, server.log_tail()
    elapsed = time.monotonic() - started
    assert elapsed < STOP_SECONDS, f"stopped after {elapsed:.1f} s\n{server.log_tail()}"


def _exited_clean(server, idle_closed: int) -> None:
    log = server.log_path.read_text()
    assert f"closed {idle_closed} idle keep-alive connection" in log, server.log_tail()
    assert "Worker exiting" in log, server.log_tail()
    assert "graceful timeout" not in log, server.log_tail()


def test_an_idle_keep_alive_connection_does_not_hold_a_stopping_worker(start_replica):
    port, server = _one_worker(start_replica)
    connection = _idle_keep_alive_connection(port)
    try:
        _stop_in_time(server)
        assert _closed_by_server(connection.sock)
    finally:
        connection.close()
    _exited_clean(server, idle_closed=1)


def test_a_request_in_flight_at_sigterm_is_answered_and_its_connection_then_closed(start_replica):
    port, server = _one_worker(start_replica)
    # the idle connection closing tells that the worker has taken the SIGTERM in
    idle = _idle_keep_alive_connection(port)
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        head = (
            f"POST /v1/models/iris/predict HTTP/1.1\r\nHost: test\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(IRIS)}\r\n\r\n"
        )
        busy.sendall(head.encode() + IRIS[:10])  # the app now waits for the rest of the body
        server.signal(signal.SIGTERM)
        wait_until(lambda: _closed_by_server(idle.sock), 5, what="the idle connection to close")
        busy.sendall(IRIS[10:])
        answer = b""
        # until the worker closes the connection: its answer, begun before the SIGTERM,
        # still says keep-alive, but the worker no longer waits for another request
        while chunk := busy.recv(65536):
            answer += chunk
    finally:
        busy.close()
        idle.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert json.loads(body)["predictions"]
    assert server.process.wait(STOP_SECONDS) == 0, server.log_tail()
    _exited_clean(server, idle_closed=1)
