"""Lean scorers: the trained estimators' answers without scikit-learn's per-call cost."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest

from service.models.iris import IrisModel, lean_knn
from service.models.registry import Registry
from service.models.sentiment import lean_tfidf_logistic, load_corpus


@pytest.fixture(scope="module")
def registry(models_dir):
    return Registry.load(models_dir)


def test_both_models_serve_with_their_lean_scorer(registry):
    assert {m.name: m.scorer for m in registry.all()} == {"iris": "lean", "sentiment": "lean"}


def test_iris_lean_scorer_gives_exactly_the_estimators_votes(registry):
    model = registry.get("iris")
    rng = np.random.default_rng(7)  # not the probes' seed
    flowers = rng.uniform([4.0, 1.8, 0.8, 0.0], [8.2, 4.6, 7.2, 2.8], (3000, 4))
    flowers = np.vstack([flowers, np.round(flowers[:1000], 1)])
    score = lean_knn(model._estimator, model.metadata)
    assert np.array_equal(score(flowers), model._estimator.predict_proba(flowers))


def test_sentiment_lean_scorer_agrees_with_the_estimator_on_corpus_texts(registry):
    model = registry.get("sentiment")
    texts = list(load_corpus()[0])[::10][:3000]
    expected = model._estimator.predict_proba(texts)
    got = lean_tfidf_logistic(model._estimator)(texts)
    assert np.abs(got - expected).max() < 1e-5
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_predictions_through_the_lean_scorer_equal_the_estimators(models_dir):
    lean, plain = Registry.load(models_dir), Registry.load(models_dir, lean=False)
    assert {m.scorer for m in plain.all()} == {"estimator"}
    rows = [(5.1, 3.5, 1.4, 0.2), (6.0, 2.2, 5.0, 1.5), (6.3, 2.8, 5.1, 1.5)]
    assert lean.get("iris").predict(rows) == plain.get("iris").predict(rows)
    texts = ["great stuff", "terrible, never again", "it is a chair"]
    for fast, slow in zip(lean.get("sentiment").predict(texts),
                          plain.get("sentiment").predict(texts), strict=True):
        assert fast.label == slow.label
        assert fast.scores == pytest.approx(slow.scores, abs=1e-5)


@pytest.mark.parametrize("spoil", [lambda p: np.roll(p, 1, axis=1),
                                   lambda p: np.where(p > 0.5, np.nan, p)],
                         ids=["wrong labels", "NaN"])
def test_a_lean_scorer_that_disagrees_is_refused_and_the_estimator_answers(registry, caplog,
                                                                           spoil):
    trained = registry.get("iris")

    class Skewed(IrisModel):
        def _lean_scorer(self):
            right = super()._lean_scorer()
            return lambda features: spoil(right(features))

    with caplog.at_level(logging.WARNING):
        model = Skewed(trained._estimator, trained.metadata)
    assert model.scorer == "estimator"
    assert "disagrees with the estimator" in caplog.text
    rows = [(5.1, 3.5, 1.4, 0.2)]
    assert model.predict(rows) == trained.predict(rows)


def test_iris_trained_on_other_flowers_has_no_lean_scorer(registry):
    model = registry.get("iris")
    metadata = copy.deepcopy(model.metadata)
    metadata["training_data"]["sha256"] = "0" * 64
    assert lean_knn(model._estimator, metadata) is None
    assert lean_knn(model._estimator, model.metadata) is not None


@pytest.mark.parametrize("change", ["norm", "binary", "solver"])
def test_sentiment_settings_the_scorer_does_not_cover_keep_the_estimator(registry, change):
    estimator = copy.deepcopy(registry.get("sentiment")._estimator)
    vectorizer = estimator.named_steps["features"].transformer_list[0][1]
    if change == "norm":
        vectorizer.norm = "l1"
    elif change == "binary":
        vectorizer.binary = True
    else:
        estimator.named_steps["classify"].solver = "liblinear"
    assert lean_tfidf_logistic(estimator) is None


def test_the_api_says_which_scorer_serves(make_app):
    lean = make_app().test_client().get("/v1/models/iris").get_json()
    plain = make_app(lean_scorers=False).test_client().get("/v1/models/sentiment").get_json()
    assert (lean["scorer"], plain["scorer"]) == ("lean", "estimator")
