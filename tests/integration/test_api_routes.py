"""Every route, through the real app with the real trained models."""

import inspect
import math


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_200_when_every_model_is_loaded(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json["models"]) == {"iris", "sentiment"}


def test_readyz_is_503_with_the_reason_when_models_are_missing(make_app, tmp_path):
    response = make_app(models_dir=tmp_path).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "not_ready"
    assert any("iris" in reason for reason in response.json["error"]["details"])


def test_model_list_names_versions_and_defaults(client):
    models = {m["name"]: m for m in client.get("/v1/models").json["models"]}
    assert set(models) == {"iris", "sentiment"}
    for model in models.values():
        assert model["default_version"] in model["versions"]


def test_model_metadata_carries_schema_labels_and_metrics(client):
    info = client.get("/v1/models/sentiment").json
    assert info["labels"] == ["negative", "neutral", "positive"]
    assert info["default"] is True
    metadata = info["metadata"]
    for key in ("version", "trained_at", "sklearn_version", "training_data", "params", "metrics"):
        assert key in metadata
    assert {"vader", "majority"} <= set(metadata["metrics"]["baselines"])
    assert "oneOf" in info["input_schema"]
    same = client.get(f"/v1/models/sentiment/versions/{info['version']}").json
    assert same["version"] == info["version"]


def test_iris_predicts_both_spellings_in_request_order(client):
    response = client.post("/v1/models/iris/predict", json={"instances": [
        [6.7, 3.0, 5.2, 2.3],
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        [5.9, 2.8, 4.3, 1.3],
    ]})
    assert response.status_code == 200
    body = response.json
    assert body["model"] == "iris"
    assert [p["label"] for p in body["predictions"]] == ["virginica", "setosa", "versicolor"]
    for prediction in body["predictions"]:
        assert math.isclose(sum(prediction["scores"].values()), 1.0, abs_tol=1e-9)
        assert prediction["label"] == max(prediction["scores"], key=prediction["scores"].get)


def test_sentiment_predicts_probabilities_that_sum_to_one(client):
    response = client.post("/v1/models/sentiment/predict", json={"instances": [
        "I absolutely love this, what a wonderful ride", {"text": "this is awful and dangerous"},
        "emoji 🚗🔥 and مرحبا and a nul \x00 byte"]})
    assert response.status_code == 200
    labels = [p["label"] for p in response.json["predictions"]]
    assert labels[:2] == ["positive", "negative"]
    for prediction in response.json["predictions"]:
        assert set(prediction["scores"]) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(prediction["scores"].values()), 1.0, rel_tol=1e-6)


def test_a_pinned_version_route_predicts_with_that_version(client):
    version = client.get("/v1/models/iris").json["version"]
    response = client.post(f"/v1/models/iris/versions/{version}/predict",
                           json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert response.status_code == 200
    assert response.json["version"] == version


def test_openapi_document_and_a_self_hosted_swagger_ui_are_served(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    docs = client.get("/docs", follow_redirects=True)
    assert docs.status_code == 200
    assert b"swagger-ui-bundle.js" in docs.data
    assert b"//cdn" not in docs.data and b"unpkg" not in docs.data
    asset = client.get("/openapi/swagger/js/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000


def test_with_metrics_disabled_predictions_work_and_metrics_are_not_served(make_app):
    client = make_app(metrics_enabled=False).test_client()
    response = client.post("/v1/models/iris/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert response.status_code == 200
    assert response.json["predictions"][0]["label"] == "setosa"
    assert client.get("/metrics").status_code == 404


def test_the_app_decides_once_per_function_whether_to_run_it_as_async(app, monkeypatch):
    asked = []

    def ask(func):
        asked.append(func)
        return inspect.iscoroutinefunction(func)

    monkeypatch.setattr("flask.app.iscoroutinefunction", ask)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert asked, "Flask no longer asks through ensure_sync: this test checks nothing"
    assert len(asked) == len(set(asked))  # each hook and view asked about once

    async def handler():
        return "x"

    monkeypatch.setattr(app, "async_to_sync", lambda func: ("wrapped", func))
    assert app.ensure_sync(handler) == ("wrapped", handler)  # async ones are still wrapped
