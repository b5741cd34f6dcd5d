"""Inputs the load test sends: hot ones repeat, cold ones never do, all are well formed."""

from __future__ import annotations

import json
import random

import pytest

from loadtest import payloads


def test_cold_iris_inputs_do_not_repeat_and_stay_within_the_data_ranges():
    rng = random.Random(1)
    seen = set()
    for _ in range(5000):
        instance = payloads.iris_cold(rng)
        values = tuple(instance.values()) if isinstance(instance, dict) else tuple(instance)
        for value, (low, high) in zip(values, payloads.IRIS_RANGES, strict=True):
            assert low <= value <= high
        seen.add(values)
    assert len(seen) == 5000


def test_cold_reviews_do_not_repeat():
    rng = random.Random(2)
    texts = {json.dumps(payloads.sentiment_cold(rng)) for _ in range(5000)}
    assert len(texts) == 5000


def test_hot_inputs_come_from_a_small_set_in_both_accepted_forms():
    rng = random.Random(3)
    drawn = [payloads.iris_hot(rng) for _ in range(400)]
    assert {type(d) for d in drawn} == {dict, list}
    as_tuples = {tuple(d.values()) if isinstance(d, dict) else tuple(d) for d in drawn}
    assert as_tuples == set(payloads.IRIS_HOT)
    texts = [payloads.sentiment_hot(rng) for _ in range(400)]
    assert {t["text"] if isinstance(t, dict) else t for t in texts} == set(payloads.SENTIMENT_HOT)


def test_every_bad_request_is_bad_for_a_reason_the_service_checks():
    cases = {case.name: case for case in payloads.bad_requests(max_instances=4, max_text_length=50)}
    too_many = json.loads(cases["too many instances"].body)
    assert len(too_many["instances"]) == 5
    too_long = json.loads(cases["text too long"].body)
    assert len(too_long["instances"][0]) > 50
    assert cases["unknown model"].statuses == frozenset({404})
    with pytest.raises(json.JSONDecodeError):
        json.loads(cases["malformed json"].body)
