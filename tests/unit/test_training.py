import csv
import hashlib
import os
import subprocess
import sys

import pytest

from service.models import sentiment
from service.train import _blas_can_be_pinned
from service.train import main as train_main


def _artifact_hashes(models_dir):
    return {p.relative_to(models_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(models_dir.glob("*/*/model.pkl"))}


def test_iris_training_is_deterministic_for_a_seed(tmp_path):
    for run in ("a", "b"):
        train_main(["--model", "iris", "--models-dir", str(tmp_path / run), "--seed", "7"])
    assert _artifact_hashes(tmp_path / "a") == _artifact_hashes(tmp_path / "b")
    assert _artifact_hashes(tmp_path / "a"), "training wrote nothing"


def test_iris_options_change_the_version(tmp_path):
    train_main(["--model", "iris", "--models-dir", str(tmp_path), "--metric", "manhattan"])
    train_main(["--model", "iris", "--models-dir", str(tmp_path), "--k", "3"])
    assert len(_artifact_hashes(tmp_path)) == 2


@pytest.fixture
def small_corpus(tmp_path):
    """Every 12th row of the real corpus (it is sorted by label), plus a duplicate and a
    conflicting pair."""
    with sentiment.corpus_path().open(encoding="latin-1", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    rows = rows[::12]
    rows += [rows[0], ["positive", "1", "same words, two labels"],
             ["negative", "1", "same words, two labels"]]
    path = tmp_path / "corpus.csv"
    with path.open("w", encoding="latin-1", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_the_corpus_loader_drops_duplicates_and_conflicting_labels(small_corpus):
    texts, labels, description = sentiment.load_corpus(small_corpus)
    assert len(texts) == len(set(texts))
    assert "same words, two labels" not in texts
    assert description["conflicting_texts_dropped"] >= 1
    assert set(labels) == {"negative", "neutral", "positive"}


def test_training_gives_identical_artifacts_across_processes(small_corpus, tmp_path):
    """Separate processes with different hash seeds: no memory address or set order
    may leak into an artifact."""
    for run, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run(
            [sys.executable, "-m", "service.train", "--models-dir", str(tmp_path / run),
             "--corpus", str(small_corpus), "--seed", "3"],
            check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    first, second = _artifact_hashes(tmp_path / "a"), _artifact_hashes(tmp_path / "b")
    assert len(first) == 2
    assert first == second


@pytest.mark.skipif(not _blas_can_be_pinned(), reason="OpenBLAS's kernels are pinned on "
                    "x86-64 with AVX2 only")
def test_training_gives_identical_artifacts_whichever_kernels_openblas_would_pick(
        small_corpus, tmp_path):
    """The small corpus trains to other coefficients with OpenBLAS's AVX and SSE kernels
    (measured); the command pins one set, so a version names the same bytes anywhere."""
    for run, kernels, threads in (("a", "Sandybridge", "2"), ("b", "Nehalem", "1")):
        subprocess.run(
            [sys.executable, "-m", "service.train", "--model", "sentiment", "--models-dir",
             str(tmp_path / run), "--corpus", str(small_corpus), "--seed", "3"],
            check=True, capture_output=True,
            env={**os.environ, "OPENBLAS_CORETYPE": kernels, "OPENBLAS_NUM_THREADS": threads})
    first, second = _artifact_hashes(tmp_path / "a"), _artifact_hashes(tmp_path / "b")
    assert len(first) == 1
    assert first == second


def test_the_real_corpus_reads_as_latin1_with_embedded_carriage_returns():
    texts, _, description = sentiment.load_corpus()
    assert description["rows_kept"] > 36_000
    assert description["conflicting_texts_dropped"] > 0
    assert any("\r" in t for t in texts), "newline='' keeps carriage returns inside texts"
