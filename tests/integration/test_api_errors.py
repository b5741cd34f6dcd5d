"""Bad input never crashes: one JSON error shape, the right status, no traceback."""

import pytest
from pydantic import BaseModel
from werkzeug.test import EnvironBuilder

PREDICT = "/v1/models/iris/predict"


def assert_error(response, status, code):
    assert response.status_code == status, response.data
    assert response.is_json
    error = response.json["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return error


def test_malformed_json_is_400(client):
    assert_error(client.post(PREDICT, data="{not json", content_type="application/json"),
                 400, "bad_request")


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deeply_nested_json_is_422_or_400_never_500(client, depth):
    # 300 levels: past pydantic's parser, within the standard one (the view falls back);
    # 100,000: past both (the standard parser's RecursionError was a 500)
    body = '{"instances": [' + "[" * depth + "]" * depth + "]}"
    response = client.post(PREDICT, data=body, content_type="application/json")
    assert_error(response, 422 if depth == 300 else 400,
                 "validation_failed" if depth == 300 else "bad_request")


def test_bodies_only_the_standard_parser_takes_are_answered_as_before(client):
    flower = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    with_bom = client.post(PREDICT, data=b"\xef\xbb\xbf" + flower,
                           content_type="application/json")
    assert with_bom.status_code == 200, with_bom.data
    assert with_bom.json["predictions"][0]["label"] == "setosa"
    surrogate = client.post("/v1/models/sentiment/predict", content_type="application/json",
                            data=b'{"instances": ["great \\ud800 stuff"]}')
    assert surrogate.status_code == 200, surrogate.data


def test_other_post_routes_get_broken_json_refused_before_their_view(app):
    seen = []
    app.add_url_rule("/v1/echo", "echo", lambda: seen.append(1) or {}, methods=["POST"])
    client = app.test_client()
    for body in ["{broken", "[" * 100_000, "null"]:
        response = client.post("/v1/echo", data=body, content_type="application/json")
        assert_error(response, 400, "bad_request")
    assert client.post("/v1/echo", json={"a": 1}).status_code == 200
    assert seen == [1]


def test_routes_flask_openapi3_validates_answer_422_in_the_same_shape(app):
    # the predict routes validate their own bodies; any other route's validation fails
    # through the app's validation_error_callback
    class Echo(BaseModel):
        n: int

    @app.post("/v1/echo-n")
    def echo_n(body: Echo):
        return {"n": body.n}

    client = app.test_client()
    error = assert_error(client.post("/v1/echo-n", json={"n": "x"}), 422, "validation_failed")
    assert error["message"] == "the request body is invalid"
    assert [detail["loc"] for detail in error["details"]] == [["n"]]
    assert client.post("/v1/echo-n", json={"n": 2}).json == {"n": 2}


def test_a_null_body_is_422(client):
    error = assert_error(client.post(PREDICT, data="null", content_type="application/json"),
                         422, "validation_failed")
    assert error["details"][0]["type"] == "model_type"


def test_wrong_content_type_is_415(client):
    assert_error(client.post(PREDICT, data="instances=1", content_type="text/plain"),
                 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/v1/models/nope", "/v1/models/nope/predict",
                                  "/v1/models/iris/versions/0000/predict", "/no/such/route"])
def test_unknown_model_version_or_route_is_404(client, path):
    response = client.post(path, json={"instances": [[1, 2, 3, 4]]}) if "predict" in path \
        else client.get(path)
    assert_error(response, 404, "not_found")


def test_wrong_method_is_405_with_allow_header(client):
    response = client.get(PREDICT)
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_body_over_the_limit_is_413(make_app):
    client = make_app(max_body_bytes=2048).test_client()
    body = '{"instances": [' + ",".join(["[5.1, 3.5, 1.4, 0.2]"] * 200) + "]}"
    assert_error(client.post(PREDICT, data=body, content_type="application/json"),
                 413, "payload_too_large")


def test_requests_carry_the_body_limit_without_reading_the_app(make_app):
    # outside any app context Flask's own Request would have no limit (None)
    app = make_app(max_body_bytes=2048)
    request = app.request_class(EnvironBuilder(PREDICT, method="POST").get_environ())
    assert request.max_content_length == 2048
    request.max_content_length = 100  # a view may still set its own
    assert request.max_content_length == 100


@pytest.mark.parametrize("instances, loc", [
    ([[5.1, 3.5, 1.4]], ["instances", 0]),
    ([[5.1, 3.5, 1.4, 0.2, 1.0]], ["instances", 0]),
    ([["5.1", 3.5, 1.4, 0.2]], ["instances", 0, "sepal_length"]),
    ([{"sepal_length": "a", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}],
     ["instances", 0, "sepal_length"]),
    ([], ["instances"]),
])
def test_invalid_iris_instances_are_422_with_field_details(client, instances, loc):
    error = assert_error(client.post(PREDICT, json={"instances": instances}),
                         422, "validation_failed")
    assert any(detail["loc"] == loc for detail in error["details"]), error["details"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client, token):
    body = '{"instances": [[' + token + ', 3.5, 1.4, 0.2]]}'
    error = assert_error(client.post(PREDICT, data=body, content_type="application/json"),
                         422, "validation_failed")
    assert error["details"][0]["type"] == "finite_number"


def test_more_instances_than_the_maximum_is_422(make_app):
    client = make_app(max_instances=3).test_client()
    error = assert_error(client.post(PREDICT, json={"instances": [[1, 1, 1, 1]] * 4}),
                         422, "validation_failed")
    assert error["details"][0]["loc"] == ["instances"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 5001])
def test_empty_or_overlong_text_is_422(client, text):
    assert_error(client.post("/v1/models/sentiment/predict", json={"instances": [text]}),
                 422, "validation_failed")


@pytest.mark.parametrize("body", [[1, 2], "just a string", {"instances": "x"},
                                  {"instances": [[1, 1, 1, 1]], "extra": 1}, {}])
def test_bodies_of_the_wrong_shape_are_422(client, body):
    assert_error(client.post(PREDICT, json=body), 422, "validation_failed")


def test_a_json_string_holding_a_request_is_422_not_parsed_again(client):
    inner = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    error = assert_error(client.post(PREDICT, json=inner), 422, "validation_failed")
    assert error["details"][0]["type"] == "model_type"
    assert client.post(PREDICT, data=inner, content_type="application/json").status_code == 200


@pytest.mark.parametrize("path", [PREDICT, "/v1/models/iris/versions/0000/predict"])
def test_both_predict_routes_answer_a_bad_body_with_field_details(client, path):
    error = assert_error(client.post(path, json={"instances": "x"}), 422, "validation_failed")
    assert error["message"] == "the request body is invalid"
    [detail] = error["details"]
    assert (detail["loc"], detail["type"]) == (["instances"], "list_type")
    assert "valid array" in detail["msg"]  # pydantic's wording for JSON input


def test_an_unexpected_fault_is_a_500_in_the_same_shape_and_logged(app, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    app.extensions["infer"].inference.predict = explode
    response = app.test_client().post(PREDICT, json={"instances": [[1, 1, 1, 1]]})
    error = assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text
    assert error["details"] is None


def test_api_keys_guard_every_route_but_probes_and_metrics(make_app):
    client = make_app(api_keys=["k1", "k2"]).test_client()
    assert_error(client.get("/v1/models"), 401, "unauthorized")
    assert_error(client.get("/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    assert client.get("/v1/models", headers={"X-API-Key": "k2"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_cors_is_off_by_default_and_on_for_configured_origins(make_app):
    origin = {"Origin": "https://ui.example"}
    closed = make_app().test_client().get("/v1/models", headers=origin)
    assert "Access-Control-Allow-Origin" not in closed.headers
    opened = make_app(cors_origins=["https://ui.example"]).test_client()
    assert opened.get("/v1/models", headers=origin).headers[
        "Access-Control-Allow-Origin"] == "https://ui.example"
