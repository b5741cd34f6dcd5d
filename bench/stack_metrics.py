"""What the stack's own metrics say about one run: batch sizes, queue wait, cache hits.

Each replica's ``/metrics`` is read before and after a run (directly, not through
NGINX, like Prometheus does) and the difference summed over replicas.
"""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from collections.abc import Iterable

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+-]+)$")
NAMES = (
    "model_batch_size_sum", "model_batch_size_count",
    "model_queue_wait_seconds_sum", "model_queue_wait_seconds_count",
    "cache_lookups_total", "batch_rejected_total",
)  # fmt: skip
MODELS = ("iris", "sentiment")


def parse(text: str) -> Counter:
    """``name{labels}`` -> value for the series the report uses."""
    found: Counter = Counter()
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] in NAMES:
            found[f"{match['name']}{{{match['labels']}}}"] += float(match["value"])
    return found


def scrape(urls: Iterable[str]) -> Counter:
    total: Counter = Counter()
    for url in urls:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            total.update(parse(response.read().decode()))
    return total


def describe(before: Counter, after: Counter) -> dict[str, float]:
    """Mean batch size and queue wait per model, and the cache hit ratio, over the run."""
    delta = Counter({key: after[key] - before.get(key, 0.0) for key in after})
    result: dict[str, float] = {}
    for model in MODELS:
        label = f'{{model="{model}"}}'
        batches = delta[f"model_batch_size_count{label}"]
        if batches:
            result[f"{model} batch size"] = delta[f"model_batch_size_sum{label}"] / batches
        waits = delta[f"model_queue_wait_seconds_count{label}"]
        if waits:
            result[f"{model} queue wait ms"] = (
                1000 * delta[f"model_queue_wait_seconds_sum{label}"] / waits
            )
    lookups = {k: v for k, v in delta.items() if k.startswith("cache_lookups_total")}
    if sum(lookups.values()):
        hits = sum(v for k, v in lookups.items() if 'result="hit"' in k)
        result["cache hit ratio"] = hits / sum(lookups.values())
    result["shed (503)"] = sum(v for k, v in delta.items() if k.startswith("batch_rejected"))
    return result
