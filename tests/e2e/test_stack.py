"""The stack as a client sees it: NGINX in front of two replicas, Redis, Prometheus.

Every request goes to 127.0.0.1 only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deploy.procs import settled, wait_until
from tests.support.cached import wait_cached

pytestmark = pytest.mark.slow

IRIS_PREDICT = "/v1/models/iris/predict"


def new_iris_instance() -> list[float]:
    """Measurements no other test sends, so the cache has never seen them."""
    return [round(random.uniform(1.0, 8.0), 6) for _ in range(4)]


def predict(base_url: str, instances: list, **kwargs) -> requests.Response:
    return requests.post(
        f"{base_url}{IRIS_PREDICT}", json={"instances": instances}, timeout=10, **kwargs
    )


def predict_many(base_url: str, count: int, workers: int = 4) -> list[requests.Response]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: predict(base_url, [new_iris_instance()]), range(count)))


def assert_error_shape(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code


def replica_request_total(replica_url: str) -> float:
    """``flask_http_request_total`` summed over labels, read from the replica itself."""
    text = requests.get(f"{replica_url}/metrics", timeout=5).text
    values = re.findall(r"^flask_http_request_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return sum(float(value) for value in values)


def prometheus_request_total(stack) -> float | None:
    result = stack.query('sum(flask_http_request_total{job="infer"})')
    return float(result[0]["value"][1]) if result else None


def test_two_hundred_requests_reach_both_replicas_and_neither_gets_under_30_percent(full_stack):
    responses = predict_many(full_stack.nginx_url, 200)

    assert [r.status_code for r in responses] == [200] * 200
    shares = Counter(full_stack.upstream_of(r) for r in responses)
    assert set(shares) == set(full_stack.replica_addresses)
    assert min(shares.values()) >= 60, shares


def test_a_new_instance_answered_by_one_replica_is_a_cache_hit_on_the_other(full_stack):
    instance = new_iris_instance()
    first = predict(full_stack.nginx_url, [instance])
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "miss"
    answered_by = full_stack.upstream_of(first)
    wait_cached(full_stack.redis_url, first.json(), [instance])  # written just after answering

    # least_conn alternates idle replicas; a few tries are enough to land on the other.
    for _ in range(10):
        again = predict(full_stack.nginx_url, [instance])
        if full_stack.upstream_of(again) != answered_by:
            break
    else:
        pytest.fail(f"ten requests in a row went to {answered_by}")
    assert again.headers["X-Cache"] == "hit"
    assert again.json()["predictions"] == first.json()["predictions"]


def test_prometheus_sees_both_replicas_up_and_counts_exactly_the_requests_sent(full_stack):
    stack = full_stack
    up = {r["metric"]["instance"]: r["value"][1] for r in stack.query('up{job="infer"}')}
    assert {address: up.get(address) for address in stack.replica_addresses} == {
        address: "1" for address in stack.replica_addresses
    }

    def settled_total() -> float:
        """Prometheus's total once it has scraped what the replicas count now."""
        # a replica's scrape shows its other worker's updates up to a second late
        live = settled(lambda: sum(replica_request_total(url) for url in stack.replica_urls),
                       what="the replicas' request totals")
        wait_until(
            lambda: prometheus_request_total(stack) == live,
            15,
            interval=0.25,
            what=f"Prometheus to report {live} requests",
        )
        return live

    before = settled_total()
    sent = 37
    assert all(r.status_code == 200 for r in predict_many(stack.nginx_url, sent))
    # Probes, /metrics scrapes and Prometheus's own traffic are not counted; only these.
    after = settled_total()
    assert after - before == sent
    time.sleep(2.5)  # two more scrapes: the total does not creep up afterwards
    assert prometheus_request_total(stack) == after


# Stock Gunicorn writes a response's headers and its body in two system calls; a SIGKILL
# between them left NGINX holding headers it had already passed on, so nothing could
# retry and the client saw a cut body (about one run in eight). service/whole_response.py
# sends both in one write; a cut body is now a failure like any other.
MAX_CUT_AFTER_HEADERS = 0


def predict_outcome(base_url: str) -> tuple[str, requests.Response]:
    """("ok" | "cut", response): "cut" when the body broke off after the headers."""
    response = predict(base_url, [new_iris_instance()], stream=True)
    try:
        response.content  # noqa: B018 - reads the body
    except requests.exceptions.ChunkedEncodingError:
        return "cut", response
    return "ok", response


def test_sigkill_of_a_replica_under_500_predictions_fails_nothing_nginx_can_retry_and_it_rejoins(
    full_stack,
):
    stack = full_stack
    victim = 1
    total = 500
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(predict_outcome, stack.nginx_url) for _ in range(total)]
        wait_until(
            lambda: sum(f.done() for f in futures) >= 100,
            30,
            interval=0.005,
            what="100 answers before the kill",
        )
        stack.kill_replica(victim)
        outcomes = [future.result() for future in futures]

    answered = [response for outcome, response in outcomes if outcome == "ok"]
    cut = [response for outcome, response in outcomes if outcome == "cut"]
    statuses = Counter(r.status_code for r in answered)
    assert statuses == {200: total - len(cut)}, statuses
    assert all(len(r.json()["predictions"]) == 1 for r in answered)
    assert len(cut) <= MAX_CUT_AFTER_HEADERS, f"{len(cut)} bodies cut short"
    # A cut answer came from the killed replica alone: NGINX had nothing left to retry.
    assert all(r.headers["X-Upstream"] == stack.replica_addresses[victim] for r in cut)

    stack.start_replica(victim)
    address = stack.replica_addresses[victim]

    def victim_answers() -> bool:
        return any(stack.upstream_of(r) == address for r in predict_many(stack.nginx_url, 10))

    # NGINX rests a failed replica for fail_timeout (5 s), then gives it traffic again.
    wait_until(victim_answers, 20, interval=0.5, what=f"{address} to take traffic again")


def _predict_until(base_url: str, done: threading.Event, answers: list, most: int = 500):
    """Paced predictions (~80/s) on one keep-alive connection to NGINX, until ``done``."""
    with requests.Session() as session:
        for _ in range(most):
            answers.append(session.post(f"{base_url}{IRIS_PREDICT}", timeout=10,
                                        json={"instances": [new_iris_instance()]}))
            if done.wait(0.01):
                return


def test_sigterm_of_a_replica_under_traffic_fails_nothing_and_it_exits_in_seconds(full_stack):
    # Every NGINX worker keeps idle keep-alive connections to the replica. The replica
    # closes them at once (service/gunicorn_worker.py) rather than waiting out
    # graceful_timeout (20 s) and being killed; NGINX retries what meets one closing.
    # One flow of predictions reaches NGINX through one of its workers: the idle
    # connections of the others stay idle (a stock gevent worker waited 20.4 s for them),
    # while the ones NGINX reuses would close after their answer anyway.
    stack = full_stack
    victim = 0
    warm = predict_many(stack.nginx_url, 100, workers=8)  # connections to both replicas
    assert {stack.upstream_of(r) for r in warm} == set(stack.replica_addresses)
    log = stack.run.replica_log(victim + 1)
    log_start = log.stat().st_size
    done, answers = threading.Event(), []
    flow = threading.Thread(target=_predict_until, args=(stack.nginx_url, done, answers))
    flow.start()
    try:
        wait_until(lambda: len(answers) >= 20, 30, what="predictions flowing")
        at_sigterm = len(answers)
        started = time.monotonic()
        stack.replicas[victim].signal(signal.SIGTERM)
        assert stack.replicas[victim].process.wait(30) == 0
        stopped_after = time.monotonic() - started
        assert stopped_after < 5, f"the replica took {stopped_after:.1f} s to stop"
        at_exit = len(answers)
        wait_until(lambda: len(answers) >= at_exit + 20, 30, what="predictions after the stop")
    finally:
        done.set()
        flow.join(15)

    assert Counter(r.status_code for r in answers) == {200: len(answers)}
    assert at_exit > at_sigterm, "no prediction was answered during the stop"
    stopping = log.read_bytes()[log_start:].decode(errors="replace")
    assert re.search(r"closed [1-9]\d* idle keep-alive connection", stopping), stopping
    assert "Worker exiting" in stopping
    assert "graceful timeout" not in stopping
    stack.start_replica(victim)


def test_an_oversized_body_gets_413_in_the_json_error_shape_from_nginx(full_stack):
    limit = full_stack.config.limits.max_body_bytes
    body = b'{"instances": ["' + b"x" * limit + b'"]}'
    response = requests.post(
        f"{full_stack.nginx_url}{IRIS_PREDICT}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error_shape(response, 413, "payload_too_large")
    assert "X-Upstream" not in response.headers or response.headers["X-Upstream"] in ("", "-")


def test_invalid_json_through_nginx_gets_the_services_400(full_stack):
    response = requests.post(
        f"{full_stack.nginx_url}{IRIS_PREDICT}",
        data=b'{"instances": [1, 2',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error_shape(response, 400, "bad_request")
    assert full_stack.upstream_of(response) in full_stack.replica_addresses


def test_an_unknown_route_through_nginx_gets_the_services_404(full_stack):
    response = requests.get(f"{full_stack.nginx_url}/v1/no-such-route", timeout=10)
    assert_error_shape(response, 404, "not_found")
    assert full_stack.upstream_of(response) in full_stack.replica_addresses


def test_metrics_are_not_served_through_nginx(full_stack):
    response = requests.get(f"{full_stack.nginx_url}/metrics", timeout=10)
    assert_error_shape(response, 404, "not_found")
    assert requests.get(f"{full_stack.replica_urls[0]}/metrics", timeout=10).status_code == 200


def test_nginx_passes_the_callers_request_id_and_makes_one_when_absent(full_stack):
    given = predict(full_stack.nginx_url, [new_iris_instance()], headers={"X-Request-ID": "t-42"})
    made = predict(full_stack.nginx_url, [new_iris_instance()])
    assert given.headers["X-Request-ID"] == "t-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    log = full_stack.run.nginx_access_log.read_text()
    assert '"request_id":"t-42"' in log
    assert '"upstream_addr":"127.0.0.1:' in log


def test_json_answers_are_gzipped_for_clients_that_accept_it(full_stack):
    instances = [new_iris_instance() for _ in range(50)]
    response = predict(full_stack.nginx_url, instances, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(response.json()["predictions"]) == 50
