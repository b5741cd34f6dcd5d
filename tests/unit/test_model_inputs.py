import math

import pytest

from service.models.base import InputError
from service.models.iris import IrisInput
from service.models.sentiment import SentimentInput

IRIS = IrisInput()


def test_iris_list_and_object_spellings_are_one_canonical_instance():
    as_list = IRIS.canonical([[5.1, 3.5, 1.4, 0.2]])
    as_object = IRIS.canonical([{"petal_width": 0.2, "sepal_length": 5.1,
                                 "petal_length": 1.4, "sepal_width": 3.5}])
    assert as_list == as_object == [(5.1, 3.5, 1.4, 0.2)]


def test_iris_integers_and_negative_zero_normalise():
    assert IRIS.canonical([[5, 3, 1, -0.0]]) == [(5.0, 3.0, 1.0, 0.0)]
    assert math.copysign(1, IRIS.canonical([[5, 3, 1, -0.0]])[0][3]) == 1


@pytest.mark.parametrize("instance, kind", [
    ([5.1, 3.5, 1.4], "wrong_feature_count"),
    ([5.1, 3.5, 1.4, 0.2, 9], "wrong_feature_count"),
    ([5.1, "3.5", 1.4, 0.2], "float_type"),
    ([5.1, True, 1.4, 0.2], "float_type"),
    ([float("nan"), 3.5, 1.4, 0.2], "finite_number"),
    ([float("inf"), 3.5, 1.4, 0.2], "finite_number"),
    ({"sepal_length": 5.1}, "missing"),
    ({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2,
      "colour": "blue"}, "extra_forbidden"),
    ("5.1,3.5,1.4,0.2", "wrong_type"),
    (None, "wrong_type"),
])
def test_iris_rejects_bad_instances_with_field_details(instance, kind):
    with pytest.raises(InputError) as caught:
        IRIS.canonical([[1, 1, 1, 1], instance])
    types = {d["type"] for d in caught.value.details}
    assert kind in types
    assert all(d["loc"][:2] == ["instances", 1] for d in caught.value.details)


def test_sentiment_accepts_strings_objects_and_any_unicode():
    spec = SentimentInput(max_length=50)
    texts = ["plain", {"text": "object"}, "emoji 🚗🔥", "مرحبا بالعالم", "nul\x00byte"]
    assert spec.canonical(texts) == ["plain", "object", "emoji 🚗🔥", "مرحبا بالعالم",
                                     "nul\x00byte"]


@pytest.mark.parametrize("instance, kind", [
    ("", "string_too_short"),
    ("   \n\t", "string_too_short"),
    ("x" * 51, "string_too_long"),
    (42, "string_type"),
    ({"txt": "typo"}, "extra_forbidden"),
    ({"text": None}, "string_type"),
])
def test_sentiment_rejects_empty_long_and_wrong_typed_text(instance, kind):
    with pytest.raises(InputError) as caught:
        SentimentInput(max_length=50).canonical([instance])
    assert caught.value.details[0]["type"] == kind
