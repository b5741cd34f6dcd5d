"""Held-out metrics shared by every model's training."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, f1_score


def classification_metrics(truth: Sequence[str], predicted: Sequence[str],
                           labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class F1 of ``predicted`` against ``truth``."""
    per_class = f1_score(truth, predicted, labels=list(labels), average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=list(labels), average="macro",
                                   zero_division=0)),
        "per_class_f1": {label: float(f) for label, f in zip(labels, per_class, strict=True)},
    }
