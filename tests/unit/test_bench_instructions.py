"""The instruction counter's pure parts: its requests, the count it reads, its table."""

from __future__ import annotations

import json

import pytest

from bench import instructions


def test_every_checkout_compared_gets_the_same_requests():
    first, again = instructions.plan("iris-uncached", 50), instructions.plan("iris-uncached", 50)
    assert first == again
    assert len(first["warm"]) == instructions.WARM_REQUESTS and len(first["measured"]) == 50
    bodies = [body for _, _, body in first["warm"] + first["measured"]]
    assert len(set(bodies)) == len(bodies)  # uncached: no body twice
    assert all(len(json.loads(body)["instances"]) == 1 for body in bodies)


def test_the_cached_workload_repeats_its_bodies_after_the_warm_up():
    cached = instructions.plan("iris-cached", 200)
    warm_bodies = {body for _, _, body in cached["warm"]}
    assert {body for _, _, body in cached["measured"]} <= warm_bodies


def test_the_count_is_read_from_callgrinds_closing_line():
    output = "==12== Events    : Ir\n==12== Collected : 123456789\n==12==\n==12== I refs: 1\n"
    assert instructions.collected(output) == 123_456_789
    with pytest.raises(RuntimeError, match="no count"):
        instructions.collected("valgrind: command not found")


def test_the_table_shows_the_change_and_the_ratio_to_healthz():
    rows = {"healthz": {"new": 500.0, "old": 600.0},
            "iris-cached": {"new": 750.0, "old": 1000.0}}
    lines = instructions.table(rows, ["new", "old"]).splitlines()
    assert lines[2] == "| healthz | 500 | 600 | -16.7% | 1.00 | 1.00 |"
    assert lines[3] == "| iris-cached | 750 | 1,000 | -25.0% | 1.50 | 1.67 |"
