"""The worker's stop, on real loopback connections served by its own ``handle``.

No process: the worker is built as Gunicorn's master builds it, and its connection
handlers run as greenlets of this test. The module patches nothing, so it is imported
here (unlike the config, see test_gunicorn_hooks.py).
"""

from __future__ import annotations

import os
import signal
import time

import gevent
import pytest
from gevent import socket
from gunicorn.config import Config
from gunicorn.glogging import Logger

from service.gunicorn_worker import DrainingGeventWorker

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def worker():
    cfg = Config()
    cfg.set("keepalive", 75)
    built = DrainingGeventWorker(0, os.getpid(), [], None, 30, cfg, Logger(cfg))
    built.wsgi = _hello
    yield built
    built.tmp.close()


@pytest.fixture
def connect(worker):
    """``connect()`` -> (client socket, the greenlet serving it with ``worker.handle``)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    opened = []

    def open_one():
        client = socket.create_connection(listener.getsockname(), timeout=5)
        conn, addr = listener.accept()
        opened.append(client)
        return client, gevent.spawn(worker.handle, listener, conn, addr)

    yield open_one
    for client in opened:
        client.close()
    listener.close()


def _answer(client) -> bytes:
    """One whole answer: headers and the 5-byte body."""
    data = b""
    while not data.endswith(b"\r\n\r\nhello"):
        chunk = client.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def test_the_stop_closes_an_idle_connection_and_serves_one_whose_request_is_arriving(
    worker, connect
):
    idle, idle_handler = connect()
    arriving, arriving_handler = connect()
    for client in (idle, arriving):
        client.sendall(REQUEST)
        assert b"Connection: keep-alive" in _answer(client)  # now waiting for the next one
    arriving.sendall(REQUEST)  # not read yet: its handler has not run since
    worker.handle_exit(signal.SIGTERM, None)
    idle_handler.join(1)
    assert idle_handler.dead
    assert idle.recv(1) == b""
    assert b"Connection: close" in _answer(arriving)
    assert arriving.recv(1) == b""
    arriving_handler.join(1)
    assert arriving_handler.dead


def test_once_stopping_a_connection_does_not_wait_for_its_next_request(worker):
    worker.alive = False
    started = time.monotonic()
    with worker.timeout_ctx():
        gevent.sleep(10)
    assert time.monotonic() - started < 1
