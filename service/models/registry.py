"""The registry: model name -> version -> loaded model, with a default version per name."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from service.models import artifacts
from service.models.base import Model
from service.models.iris import IrisModel
from service.models.sentiment import SentimentModel

log = logging.getLogger(__name__)

MODEL_CLASSES: dict[str, type[Model]] = {"iris": IrisModel, "sentiment": SentimentModel}


class UnknownModel(LookupError):
    """No loaded model has that name, or that name has no such version."""


class Registry:
    """Loaded models, looked up by name and optional version.

    ``problems`` lists why the registry is not ready: a model with no loaded
    version, or an artifact that was refused. A refused artifact is never served.
    """

    def __init__(self, models: Mapping[str, Mapping[str, Model]],
                 defaults: Mapping[str, str], problems: Iterable[str] = ()):
        self._models = {name: dict(versions) for name, versions in models.items()}
        self._defaults = dict(defaults)
        self.problems = list(problems)

    @classmethod
    def load(cls, models_dir: Path, *, default_versions: Mapping[str, str] | None = None,
             max_text_length: int = 5000, lean: bool = True,
             expected: Iterable[str] = tuple(MODEL_CLASSES)) -> Registry:
        """Load every trusted artifact below ``models_dir``."""
        models: dict[str, dict[str, Model]] = {}
        problems: list[str] = []
        try:
            found = artifacts.discover(Path(models_dir))
        except artifacts.ArtifactError as exc:
            found, problems = [], [str(exc)]
        for artifact in found:
            model_class = MODEL_CLASSES.get(artifact.name)
            if model_class is None:
                log.warning("skipping artifact of unknown model %r in %s",
                            artifact.name, artifact.directory)
                continue
            try:
                estimator = artifacts.load(artifact)
                extra = {"max_text_length": max_text_length} if model_class is SentimentModel else {}
                model = model_class(estimator, artifact.metadata, lean=lean, **extra)
            except (artifacts.ArtifactError, ValueError) as exc:
                log.error("refusing model %s version %s: %s",
                          artifact.name, artifact.version, exc)
                problems.append(f"{artifact.name} {artifact.version}: refused ({exc})")
                continue
            models.setdefault(artifact.name, {})[artifact.version] = model
            log.info("loaded model %s version %s (%s scorer)", artifact.name, artifact.version,
                     model.scorer)
        defaults = {}
        for name in expected:
            versions = models.get(name, {})
            if not versions:
                problems.append(f"{name}: no loaded version in {models_dir}")
                continue
            pinned = (default_versions or {}).get(name)
            if pinned and pinned not in versions:
                problems.append(f"{name}: pinned default version {pinned} is not loaded")
                continue
            defaults[name] = pinned or max(
                versions, key=lambda v: versions[v].metadata.get("trained_at", ""))
        return cls(models, defaults, problems)

    @property
    def ready(self) -> bool:
        return not self.problems

    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        return sorted(self._require(name))

    def default_version(self, name: str) -> str | None:
        return self._defaults.get(name)

    def get(self, name: str, version: str | None = None) -> Model:
        """The model ``name`` at ``version``, or at its default version."""
        versions = self._require(name)
        version = version or self._defaults.get(name)
        if version not in versions:
            raise UnknownModel(f"model {name!r} has no version {version!r}")
        return versions[version]

    def all(self) -> list[Model]:
        return [m for versions in self._models.values() for m in versions.values()]

    def _require(self, name: str) -> dict[str, Model]:
        if name not in self._models:
            raise UnknownModel(f"no model named {name!r}")
        return self._models[name]
