"""What every served model is: a lifecycle object with metadata and a batch predict.

A model knows nothing of Flask, Redis or HTTP. It takes a batch of *canonical*
instances (already validated and normalised by its ``InputSpec``) and returns one
``Prediction`` per instance, in order.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

log = logging.getLogger(__name__)

# Features in, one row of probabilities per instance out (columns in the estimator's
# ``classes_`` order): the estimator's ``predict_proba``, or a lean scorer.
Scorer = Callable[[Any], np.ndarray]

LEAN_TOLERANCE = 1e-5
"""How far a lean scorer's probabilities may stray from the estimator's. The sentiment
estimator computes in float32, so the two differ by up to ~5e-7 (rounding)."""


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
    """A loaded, versioned estimator behind ``predict(batch)``.

    With ``lean`` (the default) a model predicts through its *lean scorer* when it has
    one: plain numpy over the fitted estimator's learned parameters. scikit-learn's
    per-call machinery (input validation, dataframe detection, joblib dispatch, sparse
    matrices) costs more than these models' arithmetic: one iris row takes 0.37 ms
    through the estimator and 0.016 ms lean, one text of the corpus's median length
    1.0 ms and 0.11 ms, so it, not the model, dominated small batches. A lean scorer
    is only used after it has given the estimator's answers on the model's probe
    instances (labels equal, probabilities within ``LEAN_TOLERANCE``); otherwise the
    estimator answers and a warning says why. ``scorer`` tells which one serves.
    """

    name: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]

    def __init__(self, estimator: Any, metadata: dict[str, Any], *, lean: bool = True):
        self._estimator = estimator
        self.metadata = metadata
        classes = [str(c) for c in estimator.classes_]
        if sorted(classes) != sorted(self.labels):
            raise ValueError(f"{self.name} estimator has classes {classes}, want {self.labels}")
        self._classes = classes
        self._score: Scorer = estimator.predict_proba
        self.scorer = "estimator"
        if lean:
            self._adopt_lean_scorer()

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

    def _lean_scorer(self) -> Scorer | None:
        """This model's lean scorer for the loaded estimator; None when it has none (the
        default) or the estimator is configured in a way the scorer does not cover."""
        return None

    def _probes(self) -> Sequence[Any]:
        """Canonical instances on which a lean scorer must agree with the estimator."""
        return []

    def _adopt_lean_scorer(self) -> None:
        scorer = self._lean_scorer()
        if scorer is None:
            return
        probes = self._probes()
        if not probes:
            log.warning("%s %s: no probe instances; predicting with the estimator",
                        self.name, self.version)
            return
        features = self._features(probes)
        expected = np.asarray(self._estimator.predict_proba(features))
        got = np.asarray(scorer(features))
        if got.shape != expected.shape:
            problem = f"shape {got.shape}, want {expected.shape}"
        elif not np.all(np.abs(got - expected) <= LEAN_TOLERANCE):  # NaN fails too
            problem = f"probabilities differ by up to {np.max(np.abs(got - expected)):.2g}"
        elif (wrong := int(np.sum(got.argmax(1) != expected.argmax(1)))) > 0:
            problem = f"{wrong} labels differ"
        else:
            self._score, self.scorer = scorer, "lean"
            return
        log.warning("%s %s: the lean scorer disagrees with the estimator on %d probes "
                    "(%s); predicting with the estimator", self.name, self.version,
                    len(probes), problem)

    def predict(self, batch: Sequence[Any]) -> list[Prediction]:
        """Predict a batch of canonical instances in one scorer call."""
        if not batch:
            return []
        probabilities = np.asarray(self._score(self._features(batch)))
        classes = self._classes
        # Python floats and the winners' indexes for the whole batch in two calls, not
        # per row: ~1.5 us a row less at a batch of 19 iris rows
        best = probabilities.argmax(axis=1).tolist()
        return [Prediction(label=classes[winner],
                           scores=dict(zip(classes, row, strict=True)))
                for winner, row in zip(best, probabilities.tolist(), strict=True)]
