"""The repeat tier (service/api/repeats.py) in the app, with a real Redis behind the
per-instance cache: a byte-identical predict request is answered from the worker's
memory, exactly as the full path would, and nothing else is."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api.repeats import MAX_BYTES

IRIS = "/v1/models/iris/predict"
SENTIMENT = "/v1/models/sentiment/predict"


@pytest.fixture
def build(make_app, redis_url):
    """An app on the shared Redis under its own key prefix, and a count of the requests
    that reached inference (the full path)."""

    def make(**overrides):
        app = make_app(redis_url=redis_url, cache_prefix=f"t{uuid.uuid4().hex}", **overrides)
        inference = app.extensions["infer"].inference
        reached = []
        full_path = inference.predict

        def counted(model, instances, **kwargs):
            reached.append(list(instances))
            return full_path(model, instances, **kwargs)

        inference.predict = counted
        return app.test_client(), reached

    return make


def post(client, path, body: str, **headers):
    return client.post(path, data=body, content_type="application/json", headers=headers)


def seen_twice(client, path, body: str, **headers):
    """Send ``body`` twice (a body is kept from its second sighting); the first answer."""
    first = post(client, path, body, **headers)
    assert post(client, path, body, **headers).get_data() == first.get_data()
    return first


def metric(client, name: str, **labels) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_a_repeated_request_is_answered_from_memory_with_the_same_answer(build):
    client, reached = build()
    body = json.dumps({"instances": [[5.9, 3.0, 5.1, 1.8], [5.1, 3.5, 1.4, 0.2]]})
    first = post(client, IRIS, body)
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    assert post(client, IRIS, body).headers["X-Cache"] == "hit"  # per-instance local tier
    assert len(reached) == 2, "a body is kept from its second sighting"
    again = [post(client, IRIS, body) for _ in range(2)]
    assert len(reached) == 2, "repeats must not reach inference"
    for response in again:
        assert (response.status_code, response.headers["X-Cache"]) == (200, "hit")
        assert response.get_data() == first.get_data()
        assert response.mimetype == "application/json"
        assert response.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    # counted as what they are: local hits of both instances, and answered predictions
    assert metric(client, "cache_lookups_total", model="iris", result="hit", tier="local") == 6
    assert metric(client, "model_predictions_total", model="iris") == 8


def test_a_hit_is_logged_like_any_cached_answer(build, caplog):
    client, _ = build()
    request_lines = client.application.extensions["infer"].request_lines
    body = json.dumps({"instances": ["what a lovely day"]})
    seen_twice(client, SENTIMENT, body)
    request_lines.flush()  # the lines of the requests before
    caplog.clear()
    with caplog.at_level("INFO", logger="service.request"):
        assert post(client, SENTIMENT, body).headers["X-Cache"] == "hit"
        request_lines.flush()
    (line,) = [json.loads(line) for record in caplog.records
               if record.name == "service.request" for line in record.lines]
    assert {k: line[k] for k in ("status", "model", "instances", "cache")} == {
        "status": 200, "model": "sentiment", "instances": 1, "cache": "hit"}


def test_the_same_instance_in_other_bytes_takes_the_full_path_and_agrees(build):
    client, reached = build()
    first = post(client, IRIS, '{"instances": [[6.3, 3.3, 6.0, 2.5]]}')
    other = post(client, IRIS, '{"instances":[[6.3,3.3,6.0,2.5]]}')
    assert len(reached) == 2
    assert other.headers["X-Cache"] == "hit"  # from the per-instance local tier
    assert other.get_json() == first.get_json()


def test_no_cache_always_takes_the_full_path(build):
    client, reached = build()
    body = '{"instances": [[6.7, 3.1, 5.6, 2.4]]}'
    seen_twice(client, IRIS, body)
    fresh = post(client, IRIS, body, **{"Cache-Control": "no-cache"})
    assert (fresh.headers["X-Cache"], len(reached)) == ("bypass", 3)


def test_the_path_is_part_of_the_request(build):
    client, _ = build()
    body = '{"instances": ["1"]}'
    assert seen_twice(client, SENTIMENT, body).status_code == 200
    wrong_model = post(client, IRIS, body)  # a string is no flower
    assert wrong_model.status_code == 422
    assert wrong_model.get_json()["error"]["code"] == "validation_failed"


def test_failed_requests_are_never_kept(build):
    client, reached = build(max_instances=2)
    for body in (json.dumps({"instances": [[5.0, 3.4, 1.5, 0.2]] * 3}),  # one too many
                 '{"instances": []}'):
        for _ in range(3):  # noted, then kept if it were kept, then answered from there
            response = post(client, IRIS, body)
            assert response.status_code == 422
            assert response.get_json()["error"]["code"] == "validation_failed"
    assert reached == []


def test_the_api_key_is_checked_before_a_repeat_is_answered(build):
    client, _ = build(api_keys=["k1"])
    body = '{"instances": [[5.7, 2.8, 4.1, 1.3]]}'
    assert seen_twice(client, IRIS, body, **{"X-API-Key": "k1"}).status_code == 200
    refused = post(client, IRIS, body)
    assert refused.status_code == 401
    assert post(client, IRIS, body, **{"X-API-Key": "k1"}).headers["X-Cache"] == "hit"


def test_a_kept_body_under_another_content_type_gets_415(build):
    # The tier looks before the JSON check; it must not answer what that check refuses.
    client, _ = build()
    body = '{"instances": [[6.1, 2.9, 4.7, 1.4]]}'
    seen_twice(client, IRIS, body)
    refused = client.post(IRIS, data=body, content_type="text/plain")
    assert refused.status_code == 415
    assert refused.get_json()["error"]["code"] == "unsupported_media_type"
    assert "X-Cache" not in refused.headers
    same_json = client.post(IRIS, data=body, content_type="application/json; charset=utf-8")
    assert same_json.headers["X-Cache"] == "hit"


def test_big_requests_and_a_tier_turned_off_are_not_kept(build):
    client, reached = build()
    flowers = [[4.3 + i / 100, 3.0, 1.1, 0.1] for i in range(200)]
    big = json.dumps({"instances": flowers})
    assert len(big) > MAX_BYTES
    for _ in range(3):
        assert post(client, IRIS, big).status_code == 200
    assert len(reached) == 3

    off, reached_off = build(cache_repeat_entries=0)
    small = '{"instances": [[7.2, 3.0, 5.8, 1.6]]}'
    for _ in range(3):
        post(off, IRIS, small)
    assert len(reached_off) == 3


def test_one_off_requests_do_not_push_repeated_ones_out(build):
    client, reached = build(cache_repeat_entries=2)
    hot = '{"instances": [[5.0, 3.6, 1.4, 0.2]]}'
    seen_twice(client, IRIS, hot)
    for i in range(20):  # unique flowers, each sent once
        post(client, IRIS, json.dumps({"instances": [[5.0, 3.0, 1.6, 0.2 + i / 1000]]}))
    before = len(reached)
    assert post(client, IRIS, hot).headers["X-Cache"] == "hit"
    assert len(reached) == before, "the hot body must still be kept"
