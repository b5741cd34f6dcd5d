"""A stopping worker first lets its pending cache writes reach Redis (real Gunicorn, Redis).

Redis is made to hold the write up (``CLIENT PAUSE ... WRITE``) until the worker has said
it waits for it, so the write is still pending when the worker stops: no timing guess.
"""

from __future__ import annotations

import signal
import uuid

import redis
import requests

from deploy.procs import ProcessExited, wait_until
from tests.support.cached import wait_cached


def test_a_stopping_worker_waits_for_the_cache_write_redis_holds_up(start_replica, redis_url):
    client = redis.Redis.from_url(redis_url)
    # one worker; a socket timeout longer than Redis holds the write here
    url, server = start_replica(redis_url, INFER_WORKERS="1", INFER_CACHE_SOCKET_TIMEOUT="10")
    text = f"the last answer before the worker stops {uuid.uuid4().hex}"
    client.client_pause(30_000, all=False)  # writes wait; reads go on
    try:
        response = requests.post(url + "/v1/models/sentiment/predict", timeout=10,
                                 json={"instances": [text]})
        assert (response.status_code, response.headers["X-Cache"]) == (200, "miss")
        server.signal(signal.SIGTERM)

        def worker_waits() -> bool:
            if not server.alive():
                raise ProcessExited(f"stopped without waiting\n{server.log_tail()}")
            return "waiting up to" in server.log_path.read_text()

        wait_until(worker_waits, timeout=30, what="the worker to wait for its cache write")
    finally:
        client.client_unpause()
    assert server.process.wait(30) == 0
    wait_cached(redis_url, response.json(), [text], timeout=1)
    assert "still pending" not in server.log_path.read_text()
