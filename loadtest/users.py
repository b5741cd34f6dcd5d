"""Locust users: who sends what, and how each answer is checked.

The classes and their weights are the traffic mix of the default ("mixed") profile;
name one or more classes on the command line to run only those (``locust ... IrisColdUser``).
Every request goes through ``catch_response``: a 200 with a wrong body is a failure, and a
refused bad request with the right error shape is a success.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

from loadtest import payloads
from loadtest.validation import error_problem, prediction_problem

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def predict_path(model: str) -> str:
    return f"/v1/models/{model}/predict"


class PredictUser(FastHttpUser):
    """Sends predict requests for one model and checks each answer."""

    abstract = True
    model = ""
    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        # Seeded from the OS: every user on every worker draws different cold inputs.
        self.rng = random.Random()

    def predict(self, instances: list, kind: str, fresh: bool) -> None:
        with self.client.post(
            predict_path(self.model),
            json={"instances": instances},
            headers=JSON_HEADERS,
            name=f"{predict_path(self.model)} [{kind}]",
            catch_response=True,
        ) as response:
            problem = prediction_problem(
                self.model,
                len(instances),
                response.status_code,
                _json(response),
                (response.headers or {}).get("X-Cache"),
                fresh=fresh,
            )
            if problem:
                response.failure(problem)
            else:
                response.success()


class IrisHotUser(PredictUser):
    """Asks about the same few flowers again and again: cache hits after the first."""

    weight = 4
    model = "iris"

    @task(8)
    def one_hot_flower(self) -> None:
        self.predict([payloads.iris_hot(self.rng)], "hot", fresh=False)

    @task(1)
    def list_models(self) -> None:
        with self.client.get("/v1/models", name="/v1/models", catch_response=True) as response:
            if response.status_code != 200 or "iris" not in (response.text or ""):
                response.failure(f"status {response.status_code}, or iris missing")
            else:
                response.success()


class IrisColdUser(PredictUser):
    """Flowers nobody sent before, alone or a few at a time: every one reaches the model."""

    weight = 3
    model = "iris"

    @task(4)
    def one_new_flower(self) -> None:
        self.predict([payloads.iris_cold(self.rng)], "cold", fresh=True)

    @task(1)
    def a_few_new_flowers(self) -> None:
        count = self.rng.randint(2, 8)
        self.predict([payloads.iris_cold(self.rng) for _ in range(count)], "cold batch", fresh=True)


class SentimentHotUser(PredictUser):
    """The same few reviews again and again: cache hits after the first."""

    weight = 2
    model = "sentiment"

    @task
    def one_hot_review(self) -> None:
        self.predict([payloads.sentiment_hot(self.rng)], "hot", fresh=False)


class SentimentColdUser(PredictUser):
    """Reviews nobody wrote before: every one reaches the model."""

    weight = 2
    model = "sentiment"

    @task(4)
    def one_new_review(self) -> None:
        self.predict([payloads.sentiment_cold(self.rng)], "cold", fresh=True)

    @task(1)
    def a_few_new_reviews(self) -> None:
        count = self.rng.randint(2, 8)
        self.predict(
            [payloads.sentiment_cold(self.rng) for _ in range(count)], "cold batch", fresh=True
        )


class BadInputUser(FastHttpUser):
    """Sends input the service must refuse; a 4xx with the JSON error shape is a success."""

    weight = 1
    wait_time = between(0.2, 1.0)
    cases = payloads.bad_requests()

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def bad_request(self) -> None:
        case = self.rng.choice(self.cases)
        with self.client.post(
            predict_path(case.model),
            data=case.body,
            headers=JSON_HEADERS,
            name=f"bad input [{case.name}]",
            catch_response=True,
        ) as response:
            problem = error_problem(response.status_code, _json(response), case.statuses)
            if problem:
                response.failure(problem)
            else:
                response.success()


def _json(response) -> object:
    try:
        return response.json()
    except Exception:  # any undecodable body is simply "not JSON"
        return None
