"""Flask's JSON through orjson: the same documents, and no answer lost to the encoder."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import Flask

from service.json_provider import OrjsonProvider


@pytest.fixture
def app():
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


ANSWER = {"model": "sentiment", "version": "abc", "predictions": [
    {"label": "positive", "probabilities": {"negative": 0.125, "positive": 0.875}}],
    "note": "héllo 🚗", "id": uuid.UUID(int=1)}


def test_answers_are_the_documents_the_standard_provider_writes(app):
    with app.app_context():
        response = app.json.response(ANSWER)
        standard = Flask.json_provider_class(app).response(ANSWER)
    assert response.mimetype == "application/json"
    assert response.get_data().endswith(b"\n")
    assert json.loads(response.get_data()) == json.loads(standard.get_data())
    assert list(json.loads(response.get_data())) == list(ANSWER)  # keys in their order
    assert json.loads(app.json.dumps(ANSWER)) == json.loads(standard.get_data())


def test_what_orjson_refuses_is_written_by_the_standard_encoder(app):
    refused = {"text": "\ud800", "big": 2**70}  # a lone surrogate, an int past 64 bits
    with app.app_context():
        assert json.loads(app.json.response(refused).get_data()) == refused
    assert json.loads(app.json.dumps(refused)) == refused
    assert app.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'


def test_debug_mode_still_indents(app):
    app.debug = True
    with app.app_context():
        assert b"\n  " in app.json.response(ANSWER).get_data()
