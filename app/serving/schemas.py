"""Request and response bodies of the parse and models routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class StrictModel(BaseModel):
    """A request body: unknown fields and wrong types are rejected."""

    model_config = ConfigDict(extra="forbid")


N_BEST_DESCRIPTION = (
    "List this many of the most probable whole-utterance slot labellings (1-10) in "
    "'hypotheses'; omitted: no hypotheses"
)


class ParseRequest(StrictModel):
    text: StrictStr = Field(description="The utterance, as the user typed it")
    model: StrictStr | None = Field(None, description="Tagger name; the default one if omitted")
    n_best: StrictInt | None = Field(None, ge=1, le=10, description=N_BEST_DESCRIPTION)


class BatchParseRequest(StrictModel):
    texts: list[StrictStr] = Field(description="Utterances, parsed together in order")
    model: StrictStr | None = None
    n_best: StrictInt | None = Field(None, ge=1, le=10, description=N_BEST_DESCRIPTION)


class RasaParseRequest(StrictModel):
    """What Rasa's clients send: its HTTP interpreter posts ``token``, ``text`` and
    ``message_id`` (``token`` null unless ``endpoints.yml`` sets one)."""

    text: StrictStr
    message_id: StrictStr | None = Field(None, description="Echoed in the answer")
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
    intent: IntentOut
    intent_ranking: list[IntentOut]
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
