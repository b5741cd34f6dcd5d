"""Waiting for the shared cache: replicas write answers to Redis just after answering.

``service.cache.WriteBehind`` sends a worker's new answers to Redis one loop turn after
the response, so a test that asks another replica next must first see the write land.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import redis

from deploy.procs import wait_until
from service.cache import cache_key
from service.models.iris import IrisInput
from service.models.sentiment import SentimentInput

_SPECS = {"iris": IrisInput(), "sentiment": SentimentInput()}


def wait_cached(redis_url: str, answer: dict[str, Any], instances: list[Any],
                prefix: str = "infer", timeout: float = 5.0) -> None:
    """Wait until Redis holds every instance of a 200 ``answer`` (its model and version)."""
    model = SimpleNamespace(name=answer["model"], version=answer["version"])
    keys = [f"{prefix}:{cache_key(model, instance)}"
            for instance in _SPECS[model.name].canonical(instances)]
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: client.exists(*keys) == len(keys), timeout=timeout,
                   what=f"{len(keys)} answers written to Redis")
    finally:
        client.close()
