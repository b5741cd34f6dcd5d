"""What every served model is: a lifecycle object with metadata and a batch predict.

A model knows nothing of Flask, Redis or HTTP. It takes a batch of *canonical*
instances (already validated and normalised by its ``InputSpec``) and returns one
``Prediction`` per instance, in order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True, slots=True)
class Prediction:
    """One instance's answer: the winning label and a probability per label."""

    label: str
    scores: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "scores": self.scores}


class InputError(ValueError):
    """An instance that does not fit the model's input schema.

    ``details`` lists field-level problems as ``{"loc": [...], "msg": ..., "type": ...}``.
    """

    def __init__(self, message: str, details: list[dict[str, Any]]):
        super().__init__(message)
        self.details = details


class InputSpec(ABC):
    """Validates raw JSON instances for one kind of model and makes them canonical.

    The canonical form is what the model predicts on and what the cache hashes, so
    two spellings of one input (a list or an object, ``5`` or ``5.0``) are one key.
    """

    @abstractmethod
    def canonical(self, instances: Sequence[Any]) -> list[Any]:
        """Validate every instance; raise ``InputError`` naming each bad one."""

    @abstractmethod
    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one instance, for the API's model metadata."""


class Model(ABC):
    """A loaded, versioned estimator behind ``predict(batch)``."""

    name: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]

    def __init__(self, estimator: Any, metadata: dict[str, Any]):
        self._estimator = estimator
        self.metadata = metadata
        classes = [str(c) for c in estimator.classes_]
        if sorted(classes) != sorted(self.labels):
            raise ValueError(f"{self.name} estimator has classes {classes}, want {self.labels}")
        self._classes = classes

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    @abstractmethod
    def input_spec(self) -> InputSpec:
        """How this model's instances are validated."""

    @abstractmethod
    def _features(self, batch: Sequence[Any]) -> Any:
        """Turn canonical instances into what the estimator takes."""

    def predict(self, batch: Sequence[Any]) -> list[Prediction]:
        """Predict a batch of canonical instances in one estimator call."""
        if not batch:
            return []
        probabilities = np.asarray(self._estimator.predict_proba(self._features(batch)))
        return [self._prediction(row) for row in probabilities]

    def _prediction(self, row: np.ndarray) -> Prediction:
        scores = {label: float(p) for label, p in zip(self._classes, row, strict=True)}
        best = self._classes[int(np.argmax(row))]
        return Prediction(label=best, scores=scores)
