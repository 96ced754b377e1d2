"""The one on-disk model format: a directory with ``manifest.json`` and safetensors weights.

Nothing is pickled. Loading checks the format version, the task against an explicit table
of model types, the weights' SHA-256 against the manifest, and loads the state strictly,
so a corrupt, truncated, edited or mismatched artifact fails with a clear message.

``load_artifact(path, engine="numpy")`` builds a predictor on the NumPy engine straight from
the safetensors arrays and the manifest, without importing torch (a serving worker's start-up
and memory are mostly torch's otherwise); the torch model is built only for ``"torch"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_arrays

from models.calibration import Temperatures
from models.errors import ArtifactError
from models.lexical import ARRAYS as LEXICAL_ARRAYS
from models.lexical import META as LEXICAL_META
from models.lexical import LexicalIntents
from models.predictor import SentimentPredictor, SlotTaggerPredictor, is_transformer
from models.sanity import SanitySample
from models.sanity import write as write_sanity
from models.values.schema import schema_from_json
from models.vocab import LabelSet, Vocab

if TYPE_CHECKING:
    from models.sentiment import LSTMSentimentClassifier
    from models.slot_tagger import BiLSTMCRFTagger
    from models.transformer import TransformerSentimentClassifier

    Model = BiLSTMCRFTagger | LSTMSentimentClassifier | TransformerSentimentClassifier

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
# A tagger's fine-tuned intent classifier (training.intent_encoder): a whole sentiment-task
# artifact in this subfolder, bound to the tagger by its weights' SHA-256 in the manifest's
# ``training.intent_classifier``.
INTENT_CLASSIFIER = "intent_classifier"
# A tagger's bag-of-n-grams intent model (models.lexical): its files beside the weights, bound
# by their SHA-256 in the manifest's ``training.lexical_intents`` with its weight.
LEXICAL_INTENTS = "lexical_intents"
Task = Literal["slots", "sentiment"]
TASKS: tuple[str, ...] = ("slots", "sentiment")


# The JSON type of each manifest field after format_version and task; those before
# "training" are required, the others may be absent (artifacts of older slotfills).
_FIELD_TYPES: dict[str, type] = {
    "model_config": dict,
    "vocabs": dict,
    "labels": dict,
    "weights_sha256": str,
    "training": dict,
    "metrics": dict,
    "history": list,
    "data": dict,
    "libraries": dict,
    "created_at": str,
    "synonyms": dict,
    "slot_types": dict,
    "temperatures": dict,
    "intent_slots": dict,
}
_REQUIRED = ("model_config", "vocabs", "labels", "weights_sha256")
_JSON_TYPE: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``, parsed and validated once by :meth:`parse`.

    ``to_dict()`` is the JSON written to disk; the field names are its keys.
    """

    format_version: int
    task: Task
    model_config: dict[str, Any]
    vocabs: dict[str, dict[str, Any]]
    labels: dict[str, list[str]]
    weights_sha256: str
    training: dict[str, Any] = field(default_factory=dict)  # "config", "best_epoch", ...
    metrics: dict[str, Any] = field(default_factory=dict)  # {"valid": {...}}
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    data: dict[str, Any] = field(default_factory=dict)  # "name" and file fingerprints
    libraries: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    # lower-cased slot text -> canonical value (Rasa ``synonym:`` items); absent: none
    synonyms: dict[str, str] = field(default_factory=dict)
    # slot -> {"type", "source", "bound"?, "synonyms"?} (models.values.schema); a tagger
    # trained before slot types has none, and its slots resolve to null
    slot_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Calibration (models.calibration.Temperatures): "intent", "spans" or "labels" -> the
    # temperature fitted on valid; absent (older artifacts, or 1.0): unscaled
    temperatures: dict[str, float] = field(default_factory=dict)
    # A tagger's intent -> the slot types seen with it in training (models.joint); absent:
    # a tagger trained before them, which reads intents and slots apart
    intent_slots: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: object, where: Path) -> Manifest:
        """Validate the parsed JSON of the manifest at ``where`` (the artifact directory)."""
        manifest_path = where / MANIFEST
        if not isinstance(raw, dict):
            raise ArtifactError(f"{manifest_path}: expected a JSON object")
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{where}: artifact format version {version!r}, "
                f"this slotfill reads version {FORMAT_VERSION}"
            )
        task = raw.get("task")
        if task not in TASKS:
            raise ArtifactError(f"{where}: unknown task {task!r}, expected one of {TASKS}")
        for key in _REQUIRED:
            if raw.get(key) is None:
                raise ArtifactError(f"{manifest_path}: missing field {key!r}")
        for key, kind in _FIELD_TYPES.items():
            if raw.get(key) is not None and not isinstance(raw[key], kind):
                raise ArtifactError(f"{manifest_path}: field {key!r} must be {_JSON_TYPE[kind]}")
        values = {key: raw[key] for key in _FIELD_TYPES if raw.get(key) is not None}
        try:
            schema_from_json(values.get("slot_types"))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ArtifactError(f"{manifest_path}: field 'slot_types' is invalid ({err})") from err
        slots_of = values.get("intent_slots", {})
        if not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in slots_of.values()
        ):
            raise ArtifactError(f"{manifest_path}: field 'intent_slots' must map to lists of names")
        try:
            Temperatures.from_dict(values.get("temperatures"))
        except (ValueError, TypeError) as err:
            message = f"{manifest_path}: field 'temperatures' is invalid ({err})"
            raise ArtifactError(message) from err
        return cls(format_version=FORMAT_VERSION, task=cast(Task, task), **values)

    @property
    def valid_metrics(self) -> dict[str, Any]:
        """The valid-split scores recorded at training time (``slot_f1``, ``macro_f1``...)."""
        valid = self.metrics.get("valid", self.metrics)
        return dict(valid) if isinstance(valid, dict) else {}

    @property
    def calibration(self) -> Temperatures:
        """The temperatures the predictor applies (1.0 where the manifest has none)."""
        return Temperatures.from_dict(self.temperatures)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json``; no ``synonyms``, ``temperatures`` or
        ``intent_slots`` key when there are none, as in the artifacts written before them."""
        out = asdict(self)
        for key in ("synonyms", "temperatures", "intent_slots"):
            if not out[key]:
                del out[key]
        return out


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact: its manifest and a ready predictor."""

    path: Path
    manifest: Manifest
    predictor: SlotTaggerPredictor | SentimentPredictor

    @property
    def task(self) -> str:
        """``slots`` or ``sentiment``."""
        return self.manifest.task


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that decide whether weights load and behave the same."""
    import safetensors
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
    }


def save_artifact(
    out_dir: Path,
    *,
    task: Task,
    model: Model,
    vocabs: dict[str, Vocab],
    labels: dict[str, list[str]],
    training: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    data: dict[str, Any],
    synonyms: dict[str, str] | None = None,
    slot_types: dict[str, dict[str, Any]] | None = None,
    sanity: SanitySample | None = None,
    temperatures: Temperatures | None = None,
    intent_classifier: Path | None = None,
    intent_classifier_weight: float = 1.0,
    intent_slots: dict[str, list[str]] | None = None,
    lexical: LexicalIntents | None = None,
    lexical_weight: float = 0.0,
) -> Path:
    """Write an artifact to ``out_dir`` atomically (built beside it, then renamed into place).

    ``out_dir`` must not exist yet or be empty: artifacts are immutable. ``sanity``: valid
    utterances the model checks itself on before it serves (``models.sanity``); their
    scores go into ``metrics["sanity"]``. ``temperatures``: the calibration fitted on valid.
    ``intent_classifier``: a sentiment-task artifact over the tagger's intents, moved into
    the new one (:data:`INTENT_CLASSIFIER`), its probabilities weighted by
    ``intent_classifier_weight`` against the tagger head's. ``intent_slots``: a tagger's
    intent -> slot types in training, for the joint reading (:mod:`models.joint`).
    ``lexical``: a tagger's bag-of-n-grams intent model, ``lexical_weight`` of the head's share.
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ArtifactError(f"{out_dir} already exists and is not empty; artifacts are immutable")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    import safetensors.torch

    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if intent_classifier is not None:
            part = load_manifest(intent_classifier)
            if task != "slots" or part.task != "sentiment":
                raise ArtifactError("an intent classifier is a text classifier inside a tagger")
            shutil.move(str(intent_classifier), staging / INTENT_CLASSIFIER)
            bound = {
                "path": INTENT_CLASSIFIER,
                "weights_sha256": part.weights_sha256,
                "weight": intent_classifier_weight,
            }
            training = training | {INTENT_CLASSIFIER: bound}
        training = {k: v for k, v in training.items() if k != LEXICAL_INTENTS}  # set here only
        if lexical is not None:
            if task != "slots":
                raise ArtifactError("a lexical intent model belongs to a tagger")
            names = lexical.save(staging)
            sums = {name: file_sha256(staging / name) for name in names}
            training = training | {LEXICAL_INTENTS: {"sha256": sums, "weight": lexical_weight}}
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        safetensors.torch.save_file(state, str(staging / WEIGHTS), metadata={"task": task})
        if sanity is not None:
            write_sanity(staging, sanity)
            metrics = {**metrics, "sanity": sanity.scores}
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            task=task,
            model_config=model.config.to_dict(),
            vocabs={name: v.to_dict() for name, v in vocabs.items()},
            labels=labels,
            training=training,
            metrics=metrics,
            history=history,
            data=data,
            libraries=library_versions(),
            created_at=datetime.now(UTC).isoformat(),
            weights_sha256=file_sha256(staging / WEIGHTS),
            synonyms=dict(synonyms or {}),
            slot_types=slot_types or {},
            temperatures=(temperatures or Temperatures()).to_dict(),
            intent_slots=dict(intent_slots or {}),
        )
        text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
        (staging / MANIFEST).write_text(text)
        for f in staging.rglob("*"):
            if not f.is_file():
                continue
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def load_manifest(path: Path) -> Manifest:
    """Parse and validate ``manifest.json`` of the artifact at ``path``."""
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such artifact directory")
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ArtifactError(f"{path}: {MANIFEST} is missing") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({err})") from err
    return Manifest.parse(raw, path)


def load_artifact(path: Path, engine: Literal["torch", "numpy"] = "torch") -> Artifact:
    """Load an artifact and build its predictor (CPU, eval mode): on the torch model, or with
    ``engine="numpy"`` on the NumPy engine alone, without torch (see the module doc)."""
    path = Path(path)
    manifest = load_manifest(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{path}: {WEIGHTS} is missing")
    if file_sha256(weights) != manifest.weights_sha256:
        raise ArtifactError(f"{weights}: checksum does not match the manifest (corrupt or edited)")
    vocabs = {name: Vocab.from_dict(v) for name, v in manifest.vocabs.items()}
    if engine == "numpy":
        try:
            arrays = load_arrays(str(weights))
            predictor = _build(manifest, vocabs, _numpy_net(manifest, arrays))
        except (SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"{path}: cannot load weights ({err})") from err
        _attach_intent_models(path, manifest, predictor, engine)
        return Artifact(path, manifest, predictor)
    from safetensors.torch import load_file as load_tensors

    try:
        state = load_tensors(str(weights), device="cpu")
        predictor = _build(manifest, vocabs, _torch_model(manifest))
        predictor.model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{path}: cannot load weights ({err})") from err
    predictor.model.eval()
    _attach_intent_models(path, manifest, predictor, engine)
    return Artifact(path, manifest, predictor)


def _attach_intent_models(
    path: Path,
    manifest: Manifest,
    predictor: SlotTaggerPredictor | SentimentPredictor,
    engine: Literal["torch", "numpy"],
) -> None:
    _attach_lexical(path, manifest, predictor)
    _attach_intent_classifier(path, manifest, predictor, engine)


def _attach_lexical(
    path: Path, manifest: Manifest, predictor: SlotTaggerPredictor | SentimentPredictor
) -> None:
    """Load and attach the tagger's lexical intent model, if its manifest names one (each
    file checked against the SHA-256 recorded there)."""
    record = manifest.training.get(LEXICAL_INTENTS)
    if record is None:
        return
    if not isinstance(predictor, SlotTaggerPredictor) or not isinstance(record, dict):
        raise ArtifactError(f"{path}: training.{LEXICAL_INTENTS} belongs to a tagger's manifest")
    sums = record.get("sha256")
    if not isinstance(sums, dict) or set(sums) != {LEXICAL_META, LEXICAL_ARRAYS}:
        raise ArtifactError(f"{path}: training.{LEXICAL_INTENTS} must list its two files")
    for name, digest in sums.items():
        if not (path / name).is_file():
            raise ArtifactError(f"{path}: {name} is missing")
        if file_sha256(path / name) != digest:
            raise ArtifactError(f"{path / name}: checksum does not match the manifest")
    try:
        predictor.attach_lexical(LexicalIntents.load(path), float(record.get("weight", 0.0)))
    except (KeyError, TypeError, ValueError, SafetensorError) as err:
        raise ArtifactError(f"{path}: lexical intent model: {err}") from err


def _attach_intent_classifier(
    path: Path,
    manifest: Manifest,
    predictor: SlotTaggerPredictor | SentimentPredictor,
    engine: Literal["torch", "numpy"],
) -> None:
    """Load and attach the tagger's fine-tuned intent classifier, if its manifest names one
    (checked against the weights' SHA-256 recorded there)."""
    record = manifest.training.get(INTENT_CLASSIFIER)
    if record is None:
        return
    if not isinstance(predictor, SlotTaggerPredictor) or not isinstance(record, dict):
        raise ArtifactError(f"{path}: training.{INTENT_CLASSIFIER} belongs to a tagger's manifest")
    part = load_artifact(path / INTENT_CLASSIFIER, engine)
    if part.manifest.weights_sha256 != record.get("weights_sha256"):
        raise ArtifactError(f"{path / INTENT_CLASSIFIER}: not the intent classifier trained here")
    if not isinstance(part.predictor, SentimentPredictor):
        raise ArtifactError(f"{path / INTENT_CLASSIFIER}: not a text classifier")
    try:
        predictor.attach_intent_classifier(part.predictor, float(record.get("weight", 1.0)))
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"{path / INTENT_CLASSIFIER}: {err}") from err


# Config fields added after artifacts were first written, with what an older manifest (which
# lacks them) meant; the torch loader gets the same from the dataclasses' defaults
# (tests/models/test_engine.py checks both agree).
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "slots": {
        "pretrained_dim": 0,
        "trained_words": 0,
        "multi_label": False,
        "intent_threshold": 0.5,
        "num_requested": 0,
        "requested_dim": 16,
        "intent_wide_buckets": 0,
        "intent_label_attention": False,
        "intent_token_votes": False,
    },
    "sentiment": {
        "pretrained_dim": 0,
        "trained_words": 0,
        "text_scheme": "plain",
        "wide_buckets": 0,
    },
}


def config_view(manifest: Manifest) -> Any:
    """The manifest's model config as attributes, without the torch modules that define its
    dataclass (``TaggerConfig``/``SentimentConfig``): the NumPy engine reads it."""
    return SimpleNamespace(**{**CONFIG_DEFAULTS[manifest.task], **manifest.model_config})


def _numpy_net(manifest: Manifest, arrays: dict[str, np.ndarray]) -> Any:
    """The NumPy engine's network over the stored arrays (a missing one raises ``KeyError``;
    wrong weights fail the sanity check before serving, models.sanity)."""
    from models.engine import NumpySentiment, NumpyTagger, NumpyTransformerSentiment, Weights

    if manifest.task == "slots":
        return NumpyTagger(Weights(arrays, config_view(manifest), manifest.labels["tags"]))
    stored = SimpleNamespace(**manifest.model_config)
    if is_transformer(stored):
        return NumpyTransformerSentiment(Weights(arrays, stored))
    return NumpySentiment(Weights(arrays, config_view(manifest)))


def _torch_model(manifest: Manifest) -> Model:
    from models.sentiment import LSTMSentimentClassifier, SentimentConfig
    from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig

    if manifest.task == "slots":
        config = TaggerConfig(**manifest.model_config)
        return BiLSTMCRFTagger(config, manifest.labels["tags"])
    if is_transformer(SimpleNamespace(**manifest.model_config)):
        from models.transformer import TransformerSentimentClassifier, TransformerSentimentConfig

        return TransformerSentimentClassifier(TransformerSentimentConfig(**manifest.model_config))
    return LSTMSentimentClassifier(SentimentConfig(**manifest.model_config))


def _build(
    manifest: Manifest, vocabs: dict[str, Vocab], net: Any
) -> SlotTaggerPredictor | SentimentPredictor:
    """The explicit table of model types; ``net``: the torch model or a NumPy engine."""
    labels = manifest.labels
    if manifest.task == "slots":
        tags = LabelSet(labels["tags"])
        return SlotTaggerPredictor(
            net,
            vocabs["words"],
            vocabs["chars"],
            tags,
            LabelSet(labels["intents"]),
            LabelSet(labels.get("requested_slots", [])),
            manifest.synonyms,
            manifest.calibration,
            manifest.intent_slots,
        )
    return SentimentPredictor(
        net,
        vocabs["words"],
        vocabs["chars"],
        LabelSet(labels["sentiment"]),
        manifest.calibration,
    )
