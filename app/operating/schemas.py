"""Request and response bodies of the admin API and of feedback.

Responses read the ORM rows by attribute (``from_attributes``): ``JobOut.model_validate(job)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from app.db.tables import JobStatus
from app.errors import hide_paths
from app.serving.schemas import StrictModel
from models.store import NAME_PATTERN, VERSION_PATTERN


class FromRow(BaseModel):
    """A response built from an ORM row's attributes."""

    model_config = ConfigDict(from_attributes=True)


class Hyperparameters(BaseModel):
    """What a training job may set; bounds as in ``training.config.TrainConfig`` (a test keeps
    them equal). Threads and device are the operator's (``SLOTFILL_JOB_THREADS``), and so are
    ``pretrained_encoder``, ``intent_encoder`` and the ``distill_from``, ``distill_encoder``,
    ``distill_texts`` and ``distill_cache`` of distillation, paths on the training machine: the
    API takes no paths."""

    model_config = ConfigDict(extra="forbid", strict=True)

    epochs: int | None = Field(None, ge=1, le=1000)
    patience: int | None = Field(None, ge=1, le=1000)
    batch_size: int | None = Field(None, ge=1, le=4096)
    lr: float | None = Field(None, gt=0, le=1.0)
    weight_decay: float | None = Field(None, ge=0)
    clip_norm: float | None = Field(None, gt=0)
    dropout: float | None = Field(None, ge=0, lt=1)
    word_dropout: float | None = Field(None, ge=0, lt=1)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    cell: Literal["lstm", "gru", "irnn"] | None = None
    hidden_size: int | None = Field(None, ge=4, le=4096)
    num_layers: int | None = Field(None, ge=1, le=4)
    word_dim: int | None = Field(None, ge=4, le=1024)
    char_dim: int | None = Field(None, ge=4, le=512)
    char_filters: int | None = Field(None, ge=0, le=1024)
    shape_dim: int | None = Field(None, ge=0, le=64)
    min_word_count: int | None = Field(None, ge=1, le=1_000_000)
    pretrained_vectors: Literal["glove-6b-50d", "vader", "glove-6b-50d+vader", "none"] | None = None
    pretrained_words: int | None = Field(None, ge=0, le=10_000_000)
    max_minutes: float | None = Field(None, gt=0)
    lr_decay: float | None = Field(None, gt=0, le=1.0)
    lr_patience: int | None = Field(None, ge=1, le=1000)
    intent_weight: float | None = Field(None, ge=0, description="Slot taggers only")
    stop_on: Literal["auto", "slots", "intents", "both"] | None = Field(
        None, description="Slot taggers only: what early stopping reads on valid"
    )
    ema_decay: float | None = Field(
        None, ge=0, lt=1, description="Weight averaging; 0 turns it off (taggers: 0.99)"
    )
    intent_mode: Literal["auto", "single_label", "multi_label"] | None = Field(
        None, description="Slot taggers only: multi_label predicts each intent independently"
    )
    use_requested_slots: bool | None = Field(
        None, description="Slot taggers only: the requested slots as a tagger input"
    )
    bare_answers: bool | None = Field(
        None, description="Slot taggers only: also train on the bare answers to requested slots"
    )
    intent_encoder_weight: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Slot taggers with an intent encoder (the operator's) only: its weight in "
        "the blend of intent probabilities",
    )
    intent_lexical_weight: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Slot taggers only: the share of the word and character n-gram intent "
        "model in the served intents (0: none, the default)",
    )
    intent_lexical_c: float | None = Field(
        None, gt=0, description="Slot taggers only: inverse L2 strength of that model"
    )
    slot_value_swap: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Slot taggers only: chance that a training slot value is swapped for "
        "another of its type each epoch (0: never, the default)",
    )
    intent_teacher_seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="Slot taggers only: seeds of taggers trained first on the same data whose "
        "averaged intent probabilities the model learns (one more training each)",
    )
    intent_wide_buckets: int | None = Field(
        None,
        ge=0,
        le=1 << 24,
        description="Slot taggers only: hashed bigram buckets of the wide intent term (0: none)",
    )
    intent_label_attention: bool | None = Field(
        None, description="Slot taggers only: label attention in the intent head"
    )
    intent_token_votes: bool | None = Field(
        None, description="Slot taggers only: every token votes for the intent"
    )
    intent_slot_fit: float | None = Field(
        None,
        ge=0,
        le=10,
        description="Slot taggers only: weight of the slot labellings' fit in the intent "
        "probabilities (0: intents and slots read apart)",
    )
    intent_slot_min_examples: int | None = Field(
        None,
        ge=1,
        description="Slot taggers only: training examples an intent needs before its slot "
        "types are enforced",
    )
    intent_slot_min_elsewhere: int | None = Field(
        None,
        ge=1,
        description="Slot taggers only: examples of other intents a slot type needs before it "
        "is kept from an intent",
    )
    text_scheme: Literal["plain", "tweet"] | None = Field(
        None, description="Sentiment only: how the model reads text (tweet: social-media text)"
    )
    wide_buckets: int | None = Field(
        None,
        ge=0,
        le=1 << 24,
        description="Sentiment only: hashed bigram buckets of the wide term (0: none)",
    )
    intent_label_smoothing: float | None = Field(
        None, ge=0, lt=1, description="Slot taggers only: label smoothing of the intent loss"
    )
    intent_logit_adjustment: float | None = Field(
        None, ge=0, le=4, description="Slot taggers only: tau of the logit-adjusted intent loss"
    )
    class_weight_power: float | None = Field(
        None, ge=0, le=2, description="Sentiment only: label weights count ** -power"
    )
    logit_adjustment: float | None = Field(
        None, ge=0, le=4, description="Sentiment only: tau of the logit-adjusted loss"
    )
    label_smoothing: float | None = Field(
        None, ge=0, lt=1, description="Sentiment only: label smoothing of the loss"
    )
    distill_copies: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Sentiment with a distillation teacher (the operator's) only: changed "
        "copies of each training text the teacher labels",
    )
    distill_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="With a distillation teacher (sentiment) or intent_teacher_seeds (slot "
        "taggers) only: the teacher's share of a training example's loss",
    )
    distill_temperature: float | None = Field(
        None,
        gt=0,
        le=20,
        description="With a distillation teacher or intent_teacher_seeds only: softmax temperature",
    )
    lr_schedule: Literal["constant", "linear"] | None = Field(
        None, description="linear: warm up over warmup_fraction of the steps, then decay to 0"
    )
    warmup_fraction: float | None = Field(None, ge=0, lt=1)
    max_wordpieces: int | None = Field(
        None, ge=3, le=512, description="Sentiment only: word pieces a pretrained encoder reads"
    )


class TrainRequest(StrictModel):
    task: Literal["slots", "sentiment"]
    model: StrictStr = Field(pattern=NAME_PATTERN, description="Model name in the store")
    dataset: StrictStr = Field(pattern=NAME_PATTERN, description="Data set in the data dir")
    include_feedback: StrictBool = Field(False, description="Add corrections to the train split")
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    activate: Literal["never", "if_better", "always"] = Field(
        "if_better", description="if_better: when its valid F1 beats the active version's"
    )


class TrainResponse(BaseModel):
    job_id: str
    status: str


class JobOut(FromRow):
    id: str
    status: str = Field(description=" | ".join(JobStatus))
    task: str
    model: str
    dataset: str
    hyperparameters: dict[str, Any] = Field(validation_alias="params")
    activate: str
    include_feedback: bool
    progress: dict[str, Any] | None = Field(
        None, description="Last epoch: epoch, loss, valid metrics, best_epoch"
    )
    log_tail: str | None
    error: str | None
    result_version: str | None
    activated: bool | None
    cancel_requested: bool
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None

    @field_validator("log_tail", "error")
    @classmethod
    def _without_paths(cls, text: str | None) -> str | None:
        """A trainer's messages name files by absolute path; clients see no such path."""
        return hide_paths(text) if text else text


class JobsResponse(BaseModel):
    jobs: list[JobOut]


class VersionOut(BaseModel):
    version: str
    task: str
    checksum: str = Field(description="SHA-256 of the weights")
    metrics: dict[str, Any] | None
    job_id: str | None
    created_at: datetime
    active: bool


class AdminModelOut(BaseModel):
    name: str
    task: str
    active_version: str | None = Field(description="The database pointer all workers follow")
    previous_version: str | None = Field(description="What a rollback activates")
    served_version: str | None = Field(description="What the worker answering serves now")
    versions: list[VersionOut]


class AdminModelsResponse(BaseModel):
    models: list[AdminModelOut]


class ActivateRequest(StrictModel):
    version: StrictStr = Field(pattern=VERSION_PATTERN)


class ActivateResponse(FromRow):
    name: str
    version: str
    previous_version: str | None


class SlotCorrection(StrictModel):
    slot: StrictStr = Field(pattern=r"^[\w.:-]{1,64}$")
    start: StrictInt = Field(
        ge=0, le=1_000_000, description="Character offset into the logged text"
    )
    end: StrictInt = Field(ge=0, le=1_000_000)
    value: StrictStr | None = Field(None, description="If given, must equal text[start:end]")


class FeedbackRequest(StrictModel):
    request_id: StrictStr = Field(max_length=64, description="From the parse response")
    intent: StrictStr | None = Field(None, pattern=r"^[\w.:#-]{1,128}$")
    slots: list[SlotCorrection] | None = Field(None, description="All slots; [] = none")
    sentiment: StrictStr | None = Field(None, pattern=r"^[\w.:-]{1,64}$")


class FeedbackReceipt(FromRow):
    """What ``POST /v1/feedback`` answers: nothing of the logged text, which a caller who
    only knows a request id must not learn."""

    id: int
    request_id: str
    model: str | None = Field(description="name@version of the tagger that made the parse")
    status: str = Field(description="pending until an admin accepts or rejects it")
    created_at: datetime


class FeedbackOut(FromRow):
    id: int
    request_id: str
    text: str
    intent: str | None
    slots: list[dict[str, Any]] | None
    sentiment: str | None
    model: str | None
    status: str
    author: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    created_at: datetime


class FeedbackListResponse(BaseModel):
    feedback: list[FeedbackOut]
