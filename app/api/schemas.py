"""Request and response bodies. Requests reject unknown fields and wrong types."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParseRequest(_Strict):
    text: StrictStr = Field(description="The utterance, as the user typed it")
    model: StrictStr | None = Field(None, description="Tagger name; the default one if omitted")


class BatchParseRequest(_Strict):
    texts: list[StrictStr] = Field(description="Utterances, parsed together in order")
    model: StrictStr | None = None


class RasaParseRequest(_Strict):
    text: StrictStr
    message_id: StrictStr | None = None
    model: StrictStr | None = None


class TokenOut(BaseModel):
    text: str
    start: int
    end: int


class IntentOut(BaseModel):
    name: str
    confidence: float


class SlotOut(BaseModel):
    slot: str
    value: str
    start: int = Field(description="Character offset into the text as sent")
    end: int = Field(description="text[start:end] == value")
    confidence: float = Field(description="CRF marginal probability of exactly this span")


class SentimentOut(BaseModel):
    label: str
    confidence: float
    scores: dict[str, float]


class ModelRefOut(BaseModel):
    name: str
    version: str
    ref: str = Field(description="name@version")
    sentiment: str | None = Field(None, description="name@version of the sentiment model")


class ParseResponse(BaseModel):
    text: str
    tokens: list[TokenOut]
    intent: IntentOut
    intent_ranking: list[IntentOut]
    slots: list[SlotOut]
    sentiment: SentimentOut | None
    model: ModelRefOut
    request_id: str


class BatchParseResponse(BaseModel):
    results: list[ParseResponse]


class RasaEntity(BaseModel):
    entity: str
    value: str
    start: int
    end: int
    confidence_entity: float
    extractor: str


class RasaParseResponse(BaseModel):
    text: str
    intent: IntentOut
    intent_ranking: list[IntentOut]
    entities: list[RasaEntity]
    message_id: str | None = None


class ModelInfo(BaseModel):
    name: str
    version: str
    task: str
    default: bool
    created_at: str | None
    metrics: dict[str, object]
    labels: dict[str, int] = Field(description="Number of tags/intents/labels")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --------------------------------------------------------------------------- admin API

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # models.store.NAME_RE
VERSION_PATTERN = r"^[0-9]{8}T[0-9]{12}Z$"  # models.store.VERSION_RE


class Hyperparameters(BaseModel):
    """What a training job may set; bounds as in ``training.config.TrainConfig`` (a test keeps
    them equal). Threads and device are the operator's (``SLOTFILL_JOB_THREADS``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    epochs: int | None = Field(None, ge=1, le=1000)
    patience: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1, le=4096)
    lr: float | None = Field(None, gt=0, le=1.0)
    weight_decay: float | None = Field(None, ge=0)
    clip_norm: float | None = Field(None, gt=0)
    dropout: float | None = Field(None, ge=0, lt=1)
    word_dropout: float | None = Field(None, ge=0, lt=1)
    seed: int | None = Field(None, ge=0)
    cell: Literal["lstm", "gru", "irnn"] | None = None
    hidden_size: int | None = Field(None, ge=4, le=4096)
    num_layers: int | None = Field(None, ge=1, le=4)
    word_dim: int | None = Field(None, ge=4, le=1024)
    char_dim: int | None = Field(None, ge=4, le=512)
    char_filters: int | None = Field(None, ge=0, le=1024)
    shape_dim: int | None = Field(None, ge=0, le=64)
    min_word_count: int | None = Field(None, ge=1)
    pretrained_vectors: Literal["glove-6b-50d", "none"] | None = None
    pretrained_words: int | None = Field(None, ge=0)
    max_minutes: float | None = Field(None, gt=0)
    lr_decay: float | None = Field(None, gt=0, le=1.0)
    lr_patience: int | None = Field(None, ge=1)
    intent_weight: float | None = Field(None, ge=0, description="Slot taggers only")
    ema_decay: float | None = Field(
        None, ge=0, lt=1, description="Weight averaging; 0 turns it off (taggers: 0.99)"
    )


class TrainRequest(_Strict):
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


class JobOut(BaseModel):
    id: str
    status: str = Field(description="queued | running | succeeded | failed | cancelled")
    task: str
    model: str
    dataset: str
    hyperparameters: dict[str, Any]
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


class ActivateRequest(_Strict):
    version: StrictStr = Field(pattern=VERSION_PATTERN)


class ActivateResponse(BaseModel):
    name: str
    version: str
    previous_version: str | None


class SlotCorrection(_Strict):
    slot: StrictStr = Field(pattern=r"^[\w.:-]{1,64}$")
    start: StrictInt = Field(ge=0, description="Character offset into the logged text")
    end: StrictInt = Field(ge=0)
    value: StrictStr | None = Field(None, description="If given, must equal text[start:end]")


class FeedbackRequest(_Strict):
    request_id: StrictStr = Field(max_length=64, description="From the parse response")
    intent: StrictStr | None = Field(None, pattern=r"^[\w.:#-]{1,128}$")
    slots: list[SlotCorrection] | None = Field(None, description="All slots; [] = none")
    sentiment: StrictStr | None = Field(None, pattern=r"^[\w.:-]{1,64}$")


class FeedbackOut(BaseModel):
    id: int
    request_id: str
    text: str
    intent: str | None
    slots: list[dict[str, Any]] | None
    sentiment: str | None
    created_at: datetime


class FeedbackListResponse(BaseModel):
    feedback: list[FeedbackOut]
