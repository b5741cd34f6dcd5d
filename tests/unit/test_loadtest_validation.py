"""The answer checks the Locust users rely on: each must catch what it names."""

from __future__ import annotations

import pytest

from loadtest.validation import error_problem, prediction_problem

CLIENT_ERRORS = frozenset(range(400, 500))


def iris_answer(**override):
    answer = {
        "model": "iris",
        "version": "1",
        "predictions": [
            {"label": "setosa", "scores": {"setosa": 0.8, "versicolor": 0.2, "virginica": 0.0}}
        ],
    }
    answer.update(override)
    return answer


def test_a_well_formed_answer_passes():
    assert prediction_problem("iris", 1, 200, iris_answer(), "miss") is None


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (iris_answer(model="sentiment"), "model"),
        (iris_answer(version=""), "version"),
        (iris_answer(predictions=[]), "0 predictions for 1"),
        (iris_answer(predictions=[{"label": "rose", "scores": {}}]), "label 'rose'"),
        (
            iris_answer(
                predictions=[
                    {
                        "label": "setosa",
                        "scores": {"setosa": 0.5, "versicolor": 0.2, "virginica": 0.0},
                    }
                ]
            ),
            "sum to 0.7",
        ),
        (
            iris_answer(
                predictions=[
                    {
                        "label": "setosa",
                        "scores": {"setosa": 0.2, "versicolor": 0.8, "virginica": 0.0},
                    }
                ]
            ),
            "not the most probable",
        ),
        (iris_answer(predictions=[{"label": "setosa", "scores": {"setosa": 1.0}}]), "scores keys"),
        ("not json", "not a JSON object"),
    ],
)
def test_a_wrong_answer_is_named(answer, fragment):
    problem = prediction_problem("iris", 1, 200, answer, "miss")
    assert problem is not None and fragment in problem


def test_a_non_200_status_fails_whatever_the_body():
    assert "status 503" in prediction_problem("iris", 1, 503, iris_answer(), "miss")


def test_unique_inputs_answered_from_the_cache_mean_a_broken_cache_key():
    assert "X-Cache 'hit'" in prediction_problem("iris", 1, 200, iris_answer(), "hit", fresh=True)
    assert prediction_problem("iris", 1, 200, iris_answer(), "hit", fresh=False) is None


def test_a_missing_cache_header_fails():
    assert "X-Cache None" in prediction_problem("iris", 1, 200, iris_answer(), None)


def test_a_refused_bad_request_with_the_error_shape_passes():
    body = {"error": {"code": "invalid_input", "message": "bad", "details": []}}
    assert error_problem(422, body, CLIENT_ERRORS) is None


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (200, {"error": {"code": "x", "message": "y"}}, "status 200, wanted one of 400-499"),
        (500, {"error": {"code": "x", "message": "y"}}, "status 500"),
        (422, {"detail": "pydantic says no"}, "no error object"),
        (422, {"error": {"message": "y"}}, "no code"),
        (422, None, "no error object"),
    ],
)
def test_a_bad_request_answered_wrongly_fails(status, body, fragment):
    problem = error_problem(status, body, CLIENT_ERRORS)
    assert problem is not None and fragment in problem
