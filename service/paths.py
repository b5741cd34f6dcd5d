"""The paths several modules must agree on: the probes and the metrics scrape."""

from __future__ import annotations

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"
# Asked every few seconds by orchestrators and Prometheus, not by clients: open without
# an API key, and kept out of the info-level log and of the request metrics.
OPERATIONAL_PATHS = frozenset({HEALTHZ_PATH, READYZ_PATH, METRICS_PATH})
