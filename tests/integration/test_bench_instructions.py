"""The instruction counter (``bench/instructions.py``): a real count under callgrind.

The driver runs the app of this checkout inside valgrind against a real Redis; a
count only comes out when the driver's requests all answered 200 and callgrind was
switched on and off around them.
"""

from __future__ import annotations

import json

import pytest

from bench import instructions

pytestmark = pytest.mark.slow

REQUESTS = 60


@pytest.fixture(scope="module")
def shim(workdir):
    return instructions.build_shim(workdir)


def test_a_count_is_the_apps_share_of_a_request(shim, redis_url, workdir):
    per_request = {
        workload: instructions.count(instructions.ROOT, workload, REQUESTS, shim=shim,
                                     redis_url=redis_url, work=workdir)
        for workload in ("healthz", "iris-cached")
    }
    # A Flask request through our hooks is hundreds of thousands of instructions; a
    # count of the interpreter alone (the switch never turned on) would be near zero.
    assert 100_000 < per_request["healthz"] < 5_000_000
    # A cached prediction does all that healthz does and more: body, repeat tier, line.
    assert per_request["iris-cached"] > per_request["healthz"] * 1.1
    log = (workdir / "iris-cached.log").read_text().splitlines()
    predicted = [line for line in map(json.loads, log)
                 if line.get("route") == "/v1/models/<name>/predict"]
    assert len(predicted) == instructions.WARM_REQUESTS + REQUESTS  # every request answered


def test_a_failed_request_stops_the_count(shim, redis_url, workdir, monkeypatch):
    monkeypatch.setitem(instructions.WORKLOADS, "missing",
                        lambda rng: ("GET", "/no-such-route", ""))
    with pytest.raises(RuntimeError, match="404"):
        instructions.count(instructions.ROOT, "missing", 5, shim=shim, redis_url=redis_url,
                           work=workdir)
