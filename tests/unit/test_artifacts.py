import json
import logging
import pickle

import pytest

from service.models import artifacts, iris
from service.models.registry import Registry


@pytest.fixture
def stored(tmp_path):
    estimator, params, metrics, data = iris.train(seed=1)
    return artifacts.save(tmp_path, "iris", estimator,
                          {"params": params, "metrics": metrics, "training_data": data,
                           "trained_at": "2026-01-01T00:00:00+00:00"})


def test_a_saved_artifact_loads_and_predicts(stored):
    estimator = artifacts.load(stored)
    assert list(estimator.predict([[5.1, 3.5, 1.4, 0.2]])) == ["setosa"]
    assert stored.metadata["artifact"]["sha256"].startswith(stored.version)


def test_a_tampered_artifact_is_refused_before_unpickling(stored):
    path = stored.directory / artifacts.ARTIFACT
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(artifacts.ArtifactError, match="tampered"):
        artifacts.load(stored)


def test_a_pickle_naming_untrusted_code_is_refused_even_with_a_matching_hash(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("owned",))

    blob = pickle.dumps(Sneaky())
    artifact = artifacts.save(tmp_path, "iris", None, {})  # layout, then swap the body
    (artifact.directory / artifacts.ARTIFACT).write_bytes(blob)
    meta = dict(artifact.metadata)
    import hashlib

    meta["artifact"] = {**meta["artifact"], "sha256": hashlib.sha256(blob).hexdigest()}
    with pytest.raises(artifacts.ArtifactError, match=r"untrusted builtins\.print"):
        artifacts.load(artifacts.Artifact(artifact.directory, meta))


def test_registry_refuses_a_tampered_artifact_logs_it_and_is_not_ready(stored, caplog):
    (stored.directory / artifacts.ARTIFACT).write_bytes(b"not the model")
    with caplog.at_level(logging.ERROR):
        registry = Registry.load(stored.directory.parents[1], expected=["iris"])
    assert not registry.ready
    assert any("refusing model iris" in r.getMessage() for r in caplog.records)
    assert "iris" not in registry.names()


def test_registry_defaults_to_the_newest_version_unless_pinned(tmp_path):
    estimator = iris.train(seed=1)[0]
    old = artifacts.save(tmp_path, "iris", estimator, {"trained_at": "2026-01-01"})
    new = artifacts.save(tmp_path, "iris", iris.train(k=3, seed=1)[0],
                         {"trained_at": "2026-02-01"})
    assert Registry.load(tmp_path, expected=["iris"]).default_version("iris") == new.version
    pinned = Registry.load(tmp_path, expected=["iris"], default_versions={"iris": old.version})
    assert pinned.default_version("iris") == old.version
    assert pinned.ready


def test_metadata_without_a_hash_is_refused(stored):
    meta = json.loads((stored.directory / artifacts.METADATA).read_text())
    del meta["artifact"]["sha256"]
    with pytest.raises(artifacts.ArtifactError, match="no sha256"):
        artifacts.load(artifacts.Artifact(stored.directory, meta))
