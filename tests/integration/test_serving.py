"""Production serving against real processes: Gunicorn replicas with gevent workers,
one Redis shared by them, and Prometheus metrics summed over workers."""

from __future__ import annotations

import json
import shutil
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from deploy.procs import free_port, redis_server, running, settled, wait_until
from service.train import main as train_main
from tests.support.cached import wait_cached

IRIS = "/v1/models/iris/predict"


def unique_flower() -> list[float]:
    """An iris instance no other test has sent (so no cache can know it)."""
    n = uuid.uuid4().int
    return [4 + (n % 4000) / 1000, 2 + (n // 4000 % 2000) / 1000, 1 + (n // 8_000_000 % 5000)
            / 1000, 0.1 + (n // 40_000_000_000 % 2000) / 1000]


def predict(url, instances, session=requests, **headers):
    response = session.post(url + IRIS, json={"instances": instances}, headers=headers,
                            timeout=10)
    assert response.status_code == 200, response.text
    return response


def metric(url: str, name: str, **labels) -> float:
    total = 0.0
    text = requests.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture(scope="module")
def pair(start_replica, redis_url):
    """Two replicas sharing one Redis."""
    return start_replica(redis_url)[0], start_replica(redis_url)[0]


def answered(url, instances, redis_url):
    """Predict on one replica and wait until its answers are in Redis for the others."""
    response = predict(url, instances)
    wait_cached(redis_url, response.json(), instances)
    return response


def test_two_replicas_share_the_cache(pair, redis_url):
    first, second = pair
    flower = unique_flower()
    assert answered(first, [flower], redis_url).headers["X-Cache"] == "miss"
    hit = predict(second, [flower])
    assert hit.headers["X-Cache"] == "hit"
    assert hit.json() == predict(first, [flower], **{"Cache-Control": "no-cache"}).json()


def test_a_replica_learns_from_redis_once_per_worker_then_answers_from_memory(pair, redis_url):
    first, second = pair
    flower = unique_flower()
    answered(first, [flower], redis_url)

    def hits() -> tuple[float, float]:
        return tuple(metric(second, "cache_lookups_total", model="iris", result="hit",
                            tier=tier) for tier in ("local", "redis"))

    # each scrape shows the other worker's updates up to a second late: read settled ones
    before = settled(hits, what="the replica's hit counts")
    session = requests.Session()
    for _ in range(8):
        assert predict(second, [flower], session).headers["X-Cache"] == "hit"
    after = settled(hits, what="the hit counts")
    local, from_redis = after[0] - before[0], after[1] - before[1]
    # the replica has two workers: each asks Redis at most once, then keeps the answer
    assert 1 <= from_redis <= 2 and local == 8 - from_redis, (local, from_redis)


def test_a_batch_of_cached_and_new_instances_is_partial_and_in_order(pair, redis_url):
    first, second = pair
    known = [unique_flower(), unique_flower()]
    answered(first, known, redis_url)
    batch = [unique_flower(), known[1], unique_flower(), known[0]]
    response = predict(second, batch)
    assert response.headers["X-Cache"] == "partial"
    truth = predict(first, batch, **{"Cache-Control": "no-cache"})
    assert truth.headers["X-Cache"] == "bypass"
    assert response.json()["predictions"] == truth.json()["predictions"]


def _worker_request_counts(metrics_dir: Path) -> dict[str, float]:
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        counts[pid] = sum(value for key, value, *_ in MmapedDict.read_all_values_from_file(
            str(path)) if json.loads(key)[1] == "flask_http_request_total")
    return counts


def test_metrics_add_up_exactly_across_both_workers(start_replica, redis_url, workdir):
    url, server = start_replica(redis_url)
    metrics_dir = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
    sent = 0
    # the kernel picks which worker accepts a connection: a round almost always reaches
    # both (34-86 of 120 on the less busy one in ten runs under load), a few more if not
    for _ in range(4):
        flowers = [unique_flower() for _ in range(60)]
        with ThreadPoolExecutor(16) as pool:
            # each flower twice: once a miss, once a hit (on either worker, once written)
            list(pool.map(lambda f: answered(url, [f], redis_url), flowers))
            list(pool.map(lambda f: predict(url, [f]), flowers))
        sent += 2 * len(flowers)
        # a scrape shows its own worker's updates at once and the other's within a second
        wait_until(lambda n=sent: metric(url, "flask_http_request_total") == n, timeout=5,
                   what=f"{sent} requests counted")
        per_worker = _worker_request_counts(metrics_dir)
        if all(per_worker.values()):
            break
    assert metric(url, "flask_http_request_total", method="POST", status="200") == sent
    hits = metric(url, "cache_lookups_total", model="iris", result="hit")
    misses = metric(url, "cache_lookups_total", model="iris", result="miss")
    assert (hits, misses) == (sent // 2, sent // 2)
    assert metric(url, "cache_writes_dropped_total") == 0
    assert metric(url, "model_predictions_total", model="iris") == sent
    busy = [c for c in per_worker.values() if c > 0]
    assert len(busy) == 2, f"requests should spread over both workers: {per_worker}"
    assert sum(busy) == sent


def test_requests_survive_redis_dying_and_hits_resume_when_it_returns(start_replica, workdir):
    port = free_port()
    url_redis = f"redis://127.0.0.1:{port}/0"
    session = requests.Session()

    def timed(instances, **headers):
        started = time.perf_counter()
        response = predict(url, instances, session, **headers)
        return response, time.perf_counter() - started

    redis_dir = workdir / "dying"
    redis_dir.mkdir()
    with running(redis_server(port, redis_dir), lambda: redis.Redis(port=port).ping()) as r:
        # a socket timeout long enough that waiting it out would show plainly; no local
        # tier, so a hit below can only come from Redis
        url, _ = start_replica(url_redis, INFER_CACHE_SOCKET_TIMEOUT="1.0",
                               INFER_CACHE_CONNECT_TIMEOUT="1.0", INFER_CACHE_LOCAL_ENTRIES="0")
        uncached = [timed([unique_flower()], **{"Cache-Control": "no-cache"})[1]
                    for _ in range(40)]
        remembered = unique_flower()
        assert timed([remembered])[0].headers["X-Cache"] == "miss"
        for _ in range(10):
            timed([unique_flower()])
        r.stop()
        down = []
        for _ in range(60):
            response, seconds = timed([unique_flower()])
            assert response.headers["X-Cache"] == "miss"
            down.append(seconds)
    print(f"uncached median {statistics.median(uncached) * 1000:.2f} ms, redis down median "
          f"{statistics.median(down) * 1000:.2f} ms, max {max(down) * 1000:.2f} ms")
    assert statistics.median(down) <= statistics.median(uncached) + 0.005, (
        statistics.median(down), statistics.median(uncached))
    assert max(down) < 0.5, "no request may wait out the 1 s socket timeout"

    with running(redis_server(port, redis_dir), lambda: redis.Redis(port=port).ping()):
        fresh = unique_flower()
        deadline = time.monotonic() + 10
        while timed([fresh])[0].headers["X-Cache"] != "hit":
            assert time.monotonic() < deadline, "hits never resumed after Redis returned"
            time.sleep(0.2)


def test_a_new_model_version_never_serves_the_old_versions_answers(start_replica, redis_url,
                                                                  models_dir, workdir):
    models = workdir / "versions"
    shutil.copytree(models_dir, models)
    old = next(p.name for p in (models / "iris").iterdir())
    train_main(["--model", "iris", "--models-dir", str(models), "--k", "7"])
    new = next(p.name for p in (models / "iris").iterdir() if p.name != old)
    url, _ = start_replica(redis_url, models=str(models))
    flower = unique_flower()
    for version in (old, new):
        path = f"{url}/v1/models/iris/versions/{version}/predict"
        first = requests.post(path, json={"instances": [flower]}, timeout=10)
        wait_cached(redis_url, first.json(), [flower])  # the other worker may answer next
        second = requests.post(path, json={"instances": [flower]}, timeout=10)
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
        assert second.json()["version"] == version


def test_sigterm_lets_in_flight_requests_finish_and_refuses_new_connections(start_replica,
                                                                             redis_url):
    url, server = start_replica(None)
    texts = [f"the ride was fine number {i} but slow" for i in range(256)]
    results, started = [], threading.Barrier(9)

    def send():
        started.wait()
        response = requests.post(url + "/v1/models/sentiment/predict",
                                 json={"instances": texts}, timeout=30)
        results.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.15)  # the requests are on the wire and being predicted
    server.signal(15)
    # while the workers drain, readiness is off: a balancer stops sending new work
    answers = []  # in order
    while server.alive():
        try:
            answers.append(requests.get(url + "/readyz", timeout=2).status_code)
        except requests.ConnectionError:
            answers.append("refused")
        time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    assert results == [200] * 8, "every in-flight request completes"
    print(f"readiness answers while draining: {answers}")
    # The master relays the signal to the workers, so the first poll may still find one
    # ready. Once readiness is off it stays off, and it is off while work is in flight.
    off = next((i for i, answer in enumerate(answers) if answer != 200), len(answers))
    assert 503 in answers[off:] and 200 not in answers[off:], answers
    assert server.process.returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/healthz", timeout=2)


def test_with_a_log_file_request_lines_go_there_and_only_warnings_reach_stdout(start_replica,
                                                                                workdir):
    log_file = workdir / "replica-log" / "service.log"
    log_file.parent.mkdir()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: a cache warning
    url, server = start_replica(dead_redis, INFER_LOG_FILE=str(log_file))
    predict(url, [unique_flower()], **{"X-Request-ID": "to-the-file-1"})

    def lines(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()
                if line.startswith("{")]

    def logged() -> list[dict]:
        return [line for line in lines(log_file) if line.get("request_id") == "to-the-file-1"]

    # request lines are written together, at most a second late (RequestLines)
    wait_until(logged, timeout=5, what="the request's line in the file")
    in_file = lines(log_file)
    requests_logged = logged()
    assert len(requests_logged) == 1, in_file[-5:]
    assert requests_logged[0]["cache"] == "miss" and requests_logged[0]["status"] == 200
    assert any("Booting worker" in line["msg"] for line in in_file), "Gunicorn's own lines too"
    warnings = [line for line in in_file if line["level"] == "warning"]
    assert any("cache read failed" in line["msg"] for line in warnings), in_file[-5:]

    on_stdout = lines(server.log_path)
    assert any("cache read failed" in line["msg"] for line in on_stdout), "warnings reach stdout"
    assert {line["level"] for line in on_stdout} <= {"warning", "error", "critical"}
    assert not any(line.get("request_id") for line in on_stdout)
