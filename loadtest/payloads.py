"""Request bodies the load test sends: hot keys, unique inputs and bad input.

Hot inputs come from a small fixed set, so after the first request each one is a
cache hit. Cold inputs are drawn at random with enough precision that two are never
equal, so no cache can answer them and every one reaches a model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

# (low, high) of each feature in the iris data set, so cold inputs look like flowers.
IRIS_RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))

IRIS_HOT = (
    (5.1, 3.5, 1.4, 0.2),
    (4.9, 3.0, 1.4, 0.2),
    (6.4, 3.2, 4.5, 1.5),
    (5.7, 2.8, 4.1, 1.3),
    (6.3, 3.3, 6.0, 2.5),
    (7.2, 3.0, 5.8, 1.6),
    (5.0, 3.4, 1.5, 0.2),
    (6.7, 3.1, 5.6, 2.4),
)

SENTIMENT_HOT = (
    "great stuff, works exactly as promised",
    "terrible service, I want my money back",
    "the parcel arrived on tuesday",
    "absolutely love it, best purchase this year",
    "broke after two days, very disappointed",
    "it is a chair",
    "fantastic support team, quick and friendly",
    "not worth the price at all",
)

_OPENERS = ("honestly", "well", "so far", "after a week", "to be fair", "overall", "today")
_VERDICTS = (
    "this is wonderful",
    "this is awful",
    "it works fine",
    "I hate the noise",
    "the quality is excellent",
    "the box was blue",
    "delivery was slow",
    "support was helpful",
    "it stopped working",
    "nothing special",
)
_TAILS = ("would buy again", "never again", "see the photos", "thanks", "", "five stars", "meh")


def iris_instance(features: tuple[float, ...], rng: random.Random) -> dict | list:
    """One iris instance in either accepted form: an object or a list of four numbers."""
    if rng.random() < 0.5:
        return dict(zip(IRIS_FEATURES, features, strict=True))
    return list(features)


def iris_hot(rng: random.Random) -> dict | list:
    return iris_instance(rng.choice(IRIS_HOT), rng)


def iris_cold(rng: random.Random) -> dict | list:
    """A flower nobody sent before: nine decimals per feature make repeats vanishingly rare."""
    features = tuple(round(rng.uniform(low, high), 9) for low, high in IRIS_RANGES)
    return iris_instance(features, rng)


def sentiment_instance(text: str, rng: random.Random) -> dict | str:
    """One sentiment instance in either accepted form: ``{"text": ...}`` or the bare string."""
    return {"text": text} if rng.random() < 0.5 else text


def sentiment_hot(rng: random.Random) -> dict | str:
    return sentiment_instance(rng.choice(SENTIMENT_HOT), rng)


def sentiment_cold(rng: random.Random) -> dict | str:
    """A review nobody sent before: a random sentence plus a random order number."""
    words = [rng.choice(_OPENERS), rng.choice(_VERDICTS), rng.choice(_TAILS)]
    text = " ".join(word for word in words if word)
    return sentiment_instance(f"{text} (order {rng.getrandbits(48):012x})", rng)


@dataclass(frozen=True)
class BadRequest:
    """A request the service must refuse with a 4xx JSON error."""

    name: str
    model: str
    body: bytes
    statuses: frozenset[int]


CLIENT_ERRORS = frozenset(range(400, 500))


def bad_requests(max_instances: int = 256, max_text_length: int = 5000) -> tuple[BadRequest, ...]:
    """Every kind of bad input the bad-input user sends, with the statuses it accepts."""
    import json

    def body(value: object) -> bytes:
        return json.dumps(value).encode()

    too_many = [list(IRIS_HOT[0])] * (max_instances + 1)
    return (
        BadRequest("no instances key", "iris", body({"rows": [[1, 2, 3, 4]]}), CLIENT_ERRORS),
        BadRequest("empty instances", "iris", body({"instances": []}), CLIENT_ERRORS),
        BadRequest(
            "three iris features", "iris", body({"instances": [[1.0, 2.0, 3.0]]}), CLIENT_ERRORS
        ),
        BadRequest(
            "iris feature not a number",
            "iris",
            body({"instances": [{**dict.fromkeys(IRIS_FEATURES, 1.0), "petal_width": "wide"}]}),
            CLIENT_ERRORS,
        ),
        BadRequest("too many instances", "iris", body({"instances": too_many}), CLIENT_ERRORS),
        BadRequest(
            "text too long",
            "sentiment",
            body({"instances": ["word " * (max_text_length // 5 + 1)]}),
            CLIENT_ERRORS,
        ),
        BadRequest(
            "text not a string", "sentiment", body({"instances": [{"text": 12}]}), CLIENT_ERRORS
        ),
        BadRequest("malformed json", "sentiment", b'{"instances": ["unfinished', CLIENT_ERRORS),
        BadRequest(
            "unknown model", "no-such-model", body({"instances": [[1, 2, 3, 4]]}), frozenset({404})
        ),
    )
