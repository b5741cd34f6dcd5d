"""The iris classifier: k-nearest neighbours on scikit-learn's bundled iris data."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sklearn.datasets import load_iris
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from service.models.base import InputError, InputSpec, Model
from service.models.evaluation import classification_metrics

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABELS = ("setosa", "versicolor", "virginica")


class IrisFeatures(BaseModel):
    """One flower, measured in centimetres."""

    model_config = ConfigDict(strict=True, extra="forbid")

    sepal_length: float = Field(ge=0, le=100, allow_inf_nan=False, description="cm")
    sepal_width: float = Field(ge=0, le=100, allow_inf_nan=False, description="cm")
    petal_length: float = Field(ge=0, le=100, allow_inf_nan=False, description="cm")
    petal_width: float = Field(ge=0, le=100, allow_inf_nan=False, description="cm")


_FEATURES_ADAPTER = TypeAdapter(IrisFeatures)


class IrisInput(InputSpec):
    """An object with the four measurements, or a list of the four in that order."""

    def canonical(self, instances: Sequence[Any]) -> list[tuple[float, ...]]:
        rows: list[tuple[float, ...]] = []
        details: list[dict[str, Any]] = []
        for index, instance in enumerate(instances):
            if isinstance(instance, list):
                if len(instance) != len(FEATURES):
                    details.append({
                        "loc": ["instances", index],
                        "msg": f"expected {len(FEATURES)} features {list(FEATURES)}, "
                               f"got {len(instance)}",
                        "type": "wrong_feature_count",
                    })
                    continue
                instance = dict(zip(FEATURES, instance, strict=True))
            elif not isinstance(instance, dict):
                details.append({
                    "loc": ["instances", index],
                    "msg": "expected an object with "
                           f"{', '.join(FEATURES)} or a list of 4 numbers",
                    "type": "wrong_type",
                })
                continue
            try:
                parsed = _FEATURES_ADAPTER.validate_python(instance)
            except ValidationError as exc:
                details.extend(
                    {"loc": ["instances", index, *err["loc"]], "msg": err["msg"],
                     "type": err["type"]}
                    for err in exc.errors(include_url=False, include_input=False)
                )
                continue
            # 0.0 + x folds -0.0 into 0.0, so both spellings hash alike
            rows.append(tuple(0.0 + float(getattr(parsed, f)) for f in FEATURES))
        if details:
            raise InputError("some iris instances are invalid", details)
        return rows

    def json_schema(self) -> dict[str, Any]:
        number = {"type": "number", "minimum": 0, "maximum": 100}
        return {
            "oneOf": [
                IrisFeatures.model_json_schema(),
                {"type": "array", "items": number, "minItems": 4, "maxItems": 4,
                 "description": "the four measurements in the order " + ", ".join(FEATURES)},
            ]
        }


class IrisModel(Model):
    """Predicts the iris species from the four measurements."""

    name = "iris"
    labels = LABELS
    _input = IrisInput()

    @property
    def input_spec(self) -> InputSpec:
        return self._input

    def _features(self, batch: Sequence[tuple[float, ...]]) -> np.ndarray:
        return np.asarray(batch, dtype=np.float64)


def build_estimator(k: int, metric: str) -> Pipeline:
    """Scaled features into k-NN; scaling keeps one feature from dominating distances."""
    return Pipeline([
        ("scale", StandardScaler()),
        ("knn", KNeighborsClassifier(n_neighbors=k, metric=metric, weights="uniform")),
    ])


def train(*, k: int = 5, metric: str = "euclidean", seed: int = 42, folds: int = 5):
    """Fit on all of iris; report ``folds``-fold cross-validated metrics.

    Returns ``(estimator, params, metrics, data)``.
    """
    if metric not in ("euclidean", "manhattan"):
        raise ValueError(f"metric must be euclidean or manhattan, not {metric!r}")
    bunch = load_iris()
    x, y = bunch.data, np.asarray(bunch.target_names)[bunch.target]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(build_estimator(k, metric), x, y, cv=splitter)
    metrics = classification_metrics(y, predicted, LABELS)
    metrics["evaluation"] = f"{folds}-fold stratified cross-validation"
    estimator = build_estimator(k, metric).fit(x, y)
    params = {"k": k, "metric": metric, "scaling": "standard", "seed": seed, "folds": folds}
    data = {
        "source": "sklearn.datasets.load_iris (bundled with scikit-learn)",
        "rows": len(y),
        "features": list(FEATURES),
        "labels": list(LABELS),
        "sha256": _data_hash(x, y),
    }
    return estimator, params, metrics, data


def _data_hash(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    digest.update("\n".join(y.tolist()).encode())
    return digest.hexdigest()
