"""``INFER_CACHE_PREDICT_AHEAD_BELOW`` reaches the app: two apps share a real Redis, and
the setting decides whether the second runs its model on an answer Redis already has."""

from __future__ import annotations

import uuid

import pytest

IRIS = "/v1/models/iris/predict"


def _model_calls(app) -> list[int]:
    """Instances in each iris model call the app makes from now on."""
    model = app.extensions["infer"].registry.get("iris")
    calls: list[int] = []
    predict = model.predict

    def counted(rows):
        calls.append(len(rows))
        return predict(rows)

    model.predict = counted
    return calls


@pytest.mark.parametrize(("below", "calls_on_a_redis_hit"), [(1.0, [1]), (0.0, [])])
def test_the_setting_decides_whether_a_redis_hit_is_predicted_ahead(
        make_app, redis_url, below, calls_on_a_redis_hit):
    writer = make_app(redis_url=redis_url)
    reader = make_app(redis_url=redis_url, cache_predict_ahead_below=below)
    flower = [5 + uuid.uuid4().int % 1000 / 1000, 3.1, 1.4, 0.2]  # no other test sends it
    first = writer.test_client().post(IRIS, json={"instances": [flower]})
    assert first.headers["X-Cache"] == "miss"
    assert writer.extensions["infer"].cache.flush(), "the answer reached Redis"

    calls = _model_calls(reader)
    second = reader.test_client().post(IRIS, json={"instances": [flower]})
    assert second.headers["X-Cache"] == "hit"
    assert second.json == first.json
    # 1.0: recent reads found less than all of their keys (none yet), so the model runs
    # during the read; 0.0: never ahead, and Redis had the answer, so it does not run
    assert calls == calls_on_a_redis_hit
