"""Request and response bodies of the parse and models routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from models.values import load_zone


class StrictModel(BaseModel):
    """A request body: unknown fields and wrong types are rejected."""

    model_config = ConfigDict(extra="forbid")


class ClockFields(StrictModel):
    """The user's clock, which relative dates and times in slots are resolved against."""

    reference_time: datetime | None = Field(
        None,
        description="Now for the user: ISO 8601 with a UTC offset, e.g. "
        "2026-12-01T18:00:00-05:00; the server's clock if omitted",
    )
    timezone: StrictStr | None = Field(
        None,
        description="The user's IANA time zone, e.g. America/New_York; "
        "SLOTFILL_DEFAULT_TIMEZONE if omitted",
    )

    @field_validator("reference_time", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError("reference_time must be an ISO 8601 string with a UTC offset")
        return value

    @field_validator("reference_time")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("reference_time needs a UTC offset, e.g. 2026-12-01T18:00:00-05:00")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str | None) -> str | None:
        if name is not None:
            load_zone(name)  # ValueError: "unknown time zone ..."
        return name


class ParseContext(StrictModel):
    """Where the utterance stands in the dialogue."""

    requested_slots: list[StrictStr] = Field(
        default_factory=list,
        max_length=64,
        description="The slots the assistant asked for just before this utterance (after "
        "'what time?': ['time']); each must be a slot of the model (else 422). A model "
        "trained with requested slots reads them; the request log stores them",
    )


N_BEST_DESCRIPTION = (
    "List this many of the most probable whole-utterance slot labellings (1-10) in "
    "'hypotheses'; omitted: no hypotheses"
)


class ParseRequest(ClockFields):
    text: StrictStr = Field(description="The utterance, as the user typed it")
    context: ParseContext | None = Field(None, description="The dialogue context, if any")
    model: StrictStr | None = Field(None, description="Tagger name; the default one if omitted")
    n_best: StrictInt | None = Field(None, ge=1, le=10, description=N_BEST_DESCRIPTION)


class BatchParseRequest(ClockFields):
    texts: list[StrictStr] = Field(description="Utterances, parsed together in order")
    context: ParseContext | None = Field(
        None, description="One dialogue context for every text of the batch"
    )
    model: StrictStr | None = None
    n_best: StrictInt | None = Field(None, ge=1, le=10, description=N_BEST_DESCRIPTION)


class RasaParseRequest(ClockFields):
    """What Rasa's clients send: its HTTP interpreter posts ``token``, ``text`` and
    ``message_id`` (``token`` null unless ``endpoints.yml`` sets one)."""

    text: StrictStr
    message_id: StrictStr | None = Field(None, description="Echoed in the answer")
    context: ParseContext | None = Field(
        None, description="slotfill's extension: the dialogue context (as in /v1/parse)"
    )
    model: StrictStr | None = None
    token: StrictStr | None = Field(
        None,
        description="Rasa's NLU endpoint token (also accepted as the query parameter 'token'); "
        "checked only when SLOTFILL_RASA_TOKEN is set, ignored otherwise",
    )
    emulation_mode: StrictStr | None = Field(
        None,
        description="Rasa's emulation mode (also a query parameter); only its default, no "
        "emulation (null), is served: WIT, LUIS or DIALOGFLOW are refused with 422",
    )


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
    normalized: dict[str, Any] | None = Field(
        None,
        description="The value resolved for the slot's type on the user's clock, e.g. "
        '{"type": "datetime", "value": "2026-12-02T19:00:00-05:00", "grain": "hour"}; '
        "null when it cannot be resolved",
    )
    canonical: str | None = Field(
        None, description="The canonical value of a synonym in the training data, else null"
    )


class HypothesisSlotOut(BaseModel):
    slot: str
    value: str
    start: int = Field(description="Character offset into the text as sent")
    end: int = Field(description="text[start:end] == value")


class HypothesisOut(BaseModel):
    probability: float = Field(description="CRF probability of exactly this labelling")
    slots: list[HypothesisSlotOut]


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
    intent: IntentOut | None = Field(description="The best intent; null for a model without")
    intent_ranking: list[IntentOut]
    intents: list[IntentOut] = Field(
        description="The intents that hold, best first: a multi-label model's above its "
        "threshold (maybe none), a single-label model's best one"
    )
    slots: list[SlotOut]
    sentiment: SentimentOut | None
    model: ModelRefOut
    request_id: str
    hypotheses: list[HypothesisOut] | None = Field(
        None, description="With n_best: the most probable slot labellings, best first"
    )


class BatchParseResponse(BaseModel):
    results: list[ParseResponse]


class RasaEntity(BaseModel):
    entity: str
    value: Any = Field(description="The resolved value where there is one, else the text")
    additional_info: dict[str, Any] | None = Field(
        None, description="The typed resolved value, as Rasa's Duckling extractor gives it"
    )
    start: int
    end: int
    confidence_entity: float
    extractor: str
    processors: list[str] | None = Field(
        None, description="['EntitySynonymMapper'] when a synonym replaced the text"
    )


class RasaParseResponse(BaseModel):
    text: str
    intent: IntentOut | None
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
    intents: list[str] = Field(
        default_factory=list, description="The intents a tagger predicts (a Rasa domain's)"
    )
    slots: list[str] = Field(
        default_factory=list, description="The slots (entities) a tagger fills, without B-/I-"
    )
    sentiments: list[str] = Field(
        default_factory=list, description="The labels a sentiment model predicts"
    )
    slot_types: dict[str, str] = Field(
        default_factory=dict, description="Slot -> value type (date, count, money, ...)"
    )


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
