"""Repeated predict requests, answered from the worker's memory (the repeat tier).

A hot input mostly comes back as the very same request: one client sends the same
body again. Each worker keeps the response to its recent successful predict requests
under their path and body (the bytes themselves: a dict hashes them in C, where a
sha256 cost ~8,000 CPU instructions a request), and answers a byte-identical request
from there, before validation, cache keys and JSON encoding run.

It is exact. The same path and bytes are the same request to the same model version
(the path names the model, and a worker's default versions never change while it
runs), so they get the same answer. It answers only where the per-instance cache
would: behind the API-key check, never with ``Cache-Control: no-cache``, and only for
small requests and answers (``MAX_BYTES``), so it holds at most ``entries`` times
twice that (a body and its answer).
It looks before the JSON check parses the body: bytes that were answered once parsed
as JSON then, so only the content type is checked again (anything else falls through
to the JSON check's 415). A hit is counted, logged and marked (``X-Cache: hit``) as a
local cache hit of its instances, with its predictions counted, so logs and dashboards
read as before.
A request that differs in any byte (another batch, other spacing) goes the usual way
and its instances are still found one by one in the per-instance tiers.

A body is kept from its second sighting on: the first time only Python's hash of it
is noted (in a set of at most ``4 * entries`` of them, emptied when full; two bodies
with one hash only mean one is kept a sighting early). A stream of one-off
requests (unique inputs) then neither pays for keeping answers nobody asks for again
nor pushes the repeated ones out of the LRU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import Flask, Response, g, request

from service.api.predict import PREDICT_ENDPOINTS, cache_allowed, mark
from service.cache import LocalTier
from service.models.base import Model, Prediction

# Largest request body, and largest answer, the tier keeps (a one-instance request and
# its answer are 40-60 and 130-190 bytes here).
MAX_BYTES = 4096


class RepeatMetrics(Protocol):
    """What a hit reports (service.metrics.Metrics provides it)."""

    def cache_lookup(self, model: str, result: str, tier: str, count: int) -> None: ...

    def answered(self, model: Model, predictions: list[Prediction]) -> None: ...


@dataclass(frozen=True)
class _Answer:
    body: bytes
    model: Model
    predictions: list[Prediction]


class RepeatTier:
    """Per-worker LRU of predict responses by path and body (``entries`` of them)."""

    def __init__(self, entries: int, ttl_seconds: float, metrics: RepeatMetrics):
        self._answers: LocalTier[_Answer] = LocalTier(entries, ttl_seconds)
        self._seen: set[int] = set()  # hashes of requests sighted once, not yet kept
        self._seen_limit = 4 * entries
        self._metrics = metrics

    def init_app(self, app: Flask) -> None:
        """Register the lookup; call after the API-key check is registered."""
        app.before_request(self._answer_repeat)

    def _answer_repeat(self) -> Response | None:
        req = request._get_current_object()  # one proxy lookup for every read below
        if req.endpoint not in PREDICT_ENDPOINTS or not req.is_json or not cache_allowed(req):
            return None
        body = req.get_data()  # kept: the JSON check and the view read it again
        if len(body) > MAX_BYTES:
            return None
        key = (req.path, body)
        answer = self._answers.get(key)
        if answer is None:
            sighted = hash(key)  # bytes keep their hash: computed once, by the lookup
            if sighted in self._seen:  # the second sighting: keep the answer
                self._seen.discard(sighted)
                g.repeat_key = key  # the view hands its answer to ``keep``
            else:
                if len(self._seen) >= self._seen_limit:
                    self._seen.clear()
                self._seen.add(sighted)
            return None
        model, predictions = answer.model, answer.predictions
        self._metrics.cache_lookup(model.name, "hit", "local", len(predictions))
        self._metrics.answered(model, predictions)
        response = Response(answer.body, mimetype="application/json")
        mark(response, model, len(predictions), "hit")
        return response

    def keep(self, model: Model, predictions: list[Prediction], response: Response) -> None:
        """Remember the answer to the request being served, when the lookup asked for it."""
        key = g._get_current_object().pop("repeat_key", None)  # one proxy lookup
        if key is None:
            return
        body = response.get_data()
        if len(body) <= MAX_BYTES:
            self._answers.put(key, _Answer(body, model, predictions))
