"""Model registry: name -> loaded, warmed-up version. The one place a model is looked up or
swapped.

A swap builds and warms the new version first, then replaces one dictionary reference, so
requests already running keep the version they started with and none waits for a load.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from models.artifact import Artifact, load_artifact, load_manifest
from models.engine import Engine, for_engine
from models.errors import ArtifactError
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.sanity import check as check_sanity
from models.store import latest_version, list_models, list_versions, version_dir

if TYPE_CHECKING:  # models.quantize imports torch: only an int8 server loads it
    from models.quantize import QuantizeMode

log = logging.getLogger("slotfill.registry")
# Warm-up inputs of several lengths: the first calls at each sequence length allocate.
_WARMUP_WORDS = [
    *("book", "a", "flight", "from", "boston", "to", "denver"),
    *("tomorrow", "at", "7pm", "please", "for", "two", "people"),
]
WARMUP_TEXTS = tuple(" ".join(_WARMUP_WORDS[:n]) for n in range(1, len(_WARMUP_WORDS) + 1))


class StartupError(RuntimeError):
    """The configured models cannot be served; the message says which and why."""


@dataclass(frozen=True)
class LoadedModel:
    """One artifact version, loaded and warmed up."""

    name: str
    version: str
    artifact: Artifact
    loaded_at: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        """``name@version``, as reported in responses."""
        return f"{self.name}@{self.version}"

    @property
    def tagger(self) -> SlotTaggerPredictor:
        """The predictor of a slot tagger."""
        predictor = self.artifact.predictor
        if not isinstance(predictor, SlotTaggerPredictor):
            raise TypeError(f"{self.ref} is not a slot tagger")
        return predictor

    @property
    def classifier(self) -> SentimentPredictor:
        """The predictor of a sentiment model."""
        predictor = self.artifact.predictor
        if not isinstance(predictor, SentimentPredictor):
            raise TypeError(f"{self.ref} is not a sentiment model")
        return predictor


def load_version(
    store: Path,
    name: str,
    version: str,
    quantize: QuantizeMode = "none",
    engine: Engine = "torch",
) -> LoadedModel:
    """Load, check and warm up one version; raises ``ArtifactError`` or ``ValueError``.
    ``quantize``: a tagger's weights as served (:mod:`models.quantize`); ``engine``: what
    runs the networks of an unquantised model (:mod:`models.engine`).

    The check parses the valid utterances stored with the artifact and compares the scores
    with its manifest's (``models.sanity``): weights replaced under a rewritten checksum fail.

    With the NumPy engine and no quantisation, the artifact loads without torch
    (``load_artifact(..., engine="numpy")``), so the worker never imports it.
    """
    torch_free = engine == "numpy" and quantize == "none"
    path = version_dir(store, name, version)
    artifact = load_artifact(path, engine="numpy") if torch_free else load_artifact(path)
    predictor = artifact.predictor
    recorded = dict(artifact.manifest.metrics.get("sanity") or {})
    if isinstance(predictor, SlotTaggerPredictor) and quantize != "none":
        from models.quantize import for_serving

        check_sanity(artifact.path, predictor, recorded)
        predictor = for_serving(predictor, quantize)  # after the check: it checks the artifact
    elif torch_free:
        check_sanity(artifact.path, predictor, recorded)  # the engine that will serve
    else:
        predictor = for_engine(predictor, engine)
        check_sanity(artifact.path, predictor, recorded)  # the engine that will serve
    artifact = replace(artifact, predictor=predictor)
    # The first calls at each shape allocate; make them before traffic arrives. One pass
    # suffices: measured, a second pass runs at the steady-state speed already.
    if isinstance(predictor, SlotTaggerPredictor):
        predictor.parse(list(WARMUP_TEXTS))
        for text in WARMUP_TEXTS:
            predictor.parse([text])
    else:
        predictor.classify(list(WARMUP_TEXTS))
        for text in WARMUP_TEXTS:
            predictor.classify([text])
    return LoadedModel(name, version, artifact)


def load_checked(
    store: Path,
    name: str,
    version: str,
    *,
    checksum: str | None,
    task: str | None,
    quantize: QuantizeMode = "none",
    engine: Engine = "torch",
) -> LoadedModel:
    """:func:`load_version`, then check the weights against the checksum recorded for the
    version and the task against the one expected; ``ArtifactError`` if either differs."""
    model = load_version(store, name, version, quantize, engine)
    if checksum is not None and model.artifact.manifest.weights_sha256 != checksum:
        raise ArtifactError(
            f"{model.ref}: weights differ from the checksum recorded when it was trained"
        )
    if task is not None and model.artifact.task != task:
        raise ArtifactError(f"{model.ref} is a {model.artifact.task} model, expected {task}")
    return model


class ModelRegistry:
    """Taggers by name plus at most one sentiment model."""

    def __init__(
        self,
        store: Path,
        default: str,
        names: list[str],
        sentiment: str | None,
        quantize: QuantizeMode = "none",
        engine: Engine = "torch",
    ) -> None:
        self.store = store
        self.quantize: QuantizeMode = quantize
        self.engine: Engine = engine
        self.default = default
        self.names = names
        self.sentiment_name = sentiment or None
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # serialises swaps, never reads
        # Swaps so far: what a version poll read the pointers after (see install).
        self._generation = 0
        self.ready = False

    def _task(self, name: str) -> str | None:
        version = latest_version(self.store, name)
        if version is None:
            return None
        try:
            return load_manifest(version_dir(self.store, name, version)).task
        except ArtifactError:
            return "slots"  # let the load report what is wrong with it

    def load_all(self, versions: dict[str, str] | None = None) -> None:
        """Load every configured model (``versions`` pins some); fail clearly if one cannot."""
        versions = versions or {}
        names = self.names or [n for n in list_models(self.store) if self._task(n) == "slots"]
        wanted = list(dict.fromkeys([*names, self.default]))
        if self.sentiment_name:
            wanted.append(self.sentiment_name)
        loaded: dict[str, LoadedModel] = {}
        for name in wanted:
            pinned = versions.get(name)
            if pinned is None and latest_version(self.store, name) is None:
                raise StartupError(
                    f"model {name!r} has no artifact in {self.store}; train one "
                    f"(slotfill train ... --out {self.store}/{name}/<version>) "
                    "or run `slotfill bootstrap`"
                )
            model = self._load_pinned(name, pinned) if pinned else self._load_newest(name)
            expected = "sentiment" if name == self.sentiment_name else "slots"
            if model.artifact.task != expected:
                raise StartupError(
                    f"model {name!r} is a {model.artifact.task} model, expected {expected}"
                )
            loaded[name] = model
            log.info("loaded %s", model.ref)
        self._models = loaded
        self.ready = True

    def _load_pinned(self, name: str, version: str) -> LoadedModel:
        """The version the active pointer names: that one or none (an operator chose it)."""
        try:
            return load_version(self.store, name, version, self.quantize, self.engine)
        except (ArtifactError, ValueError) as err:
            raise StartupError(f"model {name}@{version} cannot be loaded: {err}") from err

    def _load_newest(self, name: str) -> LoadedModel:
        """Without an active pointer: the newest version that loads and passes its check,
        saying which newer ones were skipped and why; ``StartupError`` if none does."""
        failures: list[tuple[str, Exception]] = []
        for version in reversed(list_versions(self.store, name)):
            try:
                model = load_version(self.store, name, version, self.quantize, self.engine)
            except (ArtifactError, ValueError) as err:
                failures.append((version, err))
                log.warning(
                    "model %s@%s cannot be loaded, trying an older one: %s", name, version, err
                )
                continue
            if failures:
                log.warning(
                    "serving %s, the newest version of %s that loads (%d newer skipped)",
                    model.ref,
                    name,
                    len(failures),
                )
            return model
        newest, problem = failures[0]
        older = f" (nor can the {len(failures) - 1} older ones)" if len(failures) > 1 else ""
        raise StartupError(f"model {name}@{newest} cannot be loaded: {problem}{older}")

    def get(self, name: str | None = None) -> LoadedModel:
        """A tagger by name (default if ``None``); ``KeyError`` if not served."""
        model = self._models.get(name or self.default)
        if model is None or model.name == self.sentiment_name:
            raise KeyError(name)
        return model

    def sentiment(self) -> LoadedModel | None:
        """The sentiment model, if one is configured."""
        return self._models.get(self.sentiment_name) if self.sentiment_name else None

    def taggers(self) -> list[LoadedModel]:
        """Every served tagger."""
        return [m for n, m in self._models.items() if n != self.sentiment_name]

    def all(self) -> dict[str, LoadedModel]:
        """A snapshot of every served model."""
        return dict(self._models)

    def task_of(self, name: str) -> str:
        """The task a model served under ``name`` must have."""
        return "sentiment" if name == self.sentiment_name else "slots"

    def serves(self, name: str, task: str) -> bool:
        """Whether this registry serves (or, once activated, would serve) ``name``."""
        if task != self.task_of(name):
            return False
        return name in self._models or not self.names or name in self.names

    def prepare(self, name: str, version: str, checksum: str | None = None) -> LoadedModel:
        """Load, verify and warm ``name@version`` without serving it yet."""
        return load_checked(
            self.store,
            name,
            version,
            checksum=checksum,
            task=self.task_of(name),
            quantize=self.quantize,
            engine=self.engine,
        )

    @property
    def generation(self) -> int:
        """How many swaps this registry has made."""
        return self._generation

    def install(self, model: LoadedModel, since: int | None = None) -> int | None:
        """Serve a prepared model: one reference swap; running requests keep the old one.
        The registry's new :attr:`generation`; with ``since``, nothing (None) if a swap was
        made after that generation: a version poll that read the active pointers before an
        activation or rollback in this worker must not undo it with what it read."""
        with self._lock:
            if since is not None and since != self._generation:
                log.info("not activating %s: another version was swapped in meanwhile", model.ref)
                return None
            self._models = {**self._models, model.name: model}
            self._generation += 1
            generation = self._generation
        log.info("activated %s", model.ref)
        return generation

    def activate(
        self, name: str, version: str, checksum: str | None = None, since: int | None = None
    ) -> int | None:
        """Load, verify and warm ``name@version``, then swap it in (:meth:`install`, with
        ``since``). The old one keeps serving if anything fails."""
        current = self._models.get(name)
        if current is not None and current.version == version:
            return self._generation if since in (None, self._generation) else None
        model = self.prepare(name, version, checksum)
        return self.install(model, since)
