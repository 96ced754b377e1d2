"""Deployment settings: one object, read from `SLOTFILL_*` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedactionMode(StrEnum):
    """How the request log stores the utterance text."""

    full = "full"
    redact_slots = "redact_slots"
    hash = "hash"


class Settings(BaseSettings):
    """Everything an operator can set; defaults give the embedded SQLite setup."""

    model_config = SettingsConfigDict(env_prefix="SLOTFILL_", extra="ignore")

    model_store: Path = Field(Path("model_store"), description="Directory of trained artifacts")
    default_model: str = Field("demo", description="Tagger used when a request names none")
    models: list[str] = Field(
        default_factory=list,
        description="Taggers to serve (names in the model store); empty = every tagger found",
    )
    sentiment_model: str | None = Field(
        "demo-sentiment", description="Sentiment model name in the store; empty disables sentiment"
    )
    database_url: str = Field("sqlite:///./slotfill.db", description="SQLAlchemy URL of the log DB")
    data_dir: Path = Field(Path("data"), description="Directory of named training data sets")
    demo_data_dir: Path = Field(Path("data/demo"), description="Bundled demo data set")
    max_text_chars: int = Field(2000, ge=1, description="Longest accepted utterance")
    max_batch_items: int = Field(64, ge=1, description="Most texts in one batch request")
    max_request_chars: int = Field(
        16000, ge=1, description="Most characters of text in one parse request, all texts together"
    )
    max_request_tokens: int = Field(
        2048, ge=1, description="Most tokens in one parse request, all texts together"
    )
    max_body_bytes: int = Field(65536, ge=1, description="Largest accepted request body")
    max_concurrency: int = Field(64, ge=1, description="In-flight requests before 503")
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest wait for the rest of a request body before 408"
    )
    max_header_bytes: int = Field(
        16384, ge=1024, description="Largest request head (request line and headers) before 431"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for a whole request head (or a first byte) before 408"
    )
    keep_alive_seconds: int = Field(
        75,
        ge=1,
        description="How long an idle keep-alive connection stays open: longer than the idle "
        "timeouts of the proxies and clients that reuse connections (nginx upstream 60 s, "
        "httpx 5 s), so that they close it first; a server closing a connection a client is "
        "reusing at that moment resets the request",
    )
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads per worker")
    quantize: Literal["none", "int8"] = Field(
        "none",
        description="Taggers' weights when served: none (float32) or int8 (dynamic quantisation "
        "of the recurrent and linear layers)",
    )
    engine: Literal["torch", "numpy"] = Field(
        "numpy",
        description="What runs the networks of float32 models: numpy (models.engine: the same "
        "weights and answers, a fraction of torch's per-call overhead) or torch; "
        "SLOTFILL_QUANTIZE=int8 needs torch",
    )
    kernels: Literal["native", "numpy"] = Field(
        "native",
        description="What runs the numpy engine's recurrent steps and CRF recursions: native "
        "(its compiled kernels, models/_native.c, built at install where a C compiler is at "
        "hand; NumPy otherwise, with a warning) or numpy (its NumPy loops); the same answers",
    )
    recurrent_weights: Literal["float16", "float32"] = Field(
        "float16",
        description="Precision of the recurrent weights the numpy engine's steps read: float16 "
        "(rounded to IEEE half precision: the compiled kernels stream half the bytes a step, "
        "and both networks' weights stay in a 1 MiB L2 cache; arithmetic stays float32) or "
        "float32 (the artifact's own)",
    )
    default_timezone: str = Field(
        "UTC",
        description="IANA time zone slot values are resolved in when a request names none",
    )
    fallback_threshold: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="A parse whose best intent's confidence is below this answers the intent "
        "nlu_fallback (confidence = this threshold) ahead of its ranking, as Rasa's "
        "FallbackClassifier does; 0 = off",
    )
    log_redaction: RedactionMode = Field(RedactionMode.full, description="Request-log text mode")
    log_queue_size: int = Field(10000, ge=1, description="Request-log rows buffered in memory")
    log_batch_size: int = Field(200, ge=1, description="Rows per database write")
    log_spill_dir: Path = Field(Path("spill"), description="Rows wait here while the DB is down")
    log_journal_dir: Path | None = Field(
        None, description="Every row is journaled here until stored; unset = the spill folder"
    )
    reuse_port: bool = Field(
        True,
        description="With several workers, each listens on a socket of its own "
        "(SO_REUSEPORT, Linux) and the kernel spreads new connections over them; off: one "
        "shared socket, where the worker that wakes first may take every waiting connection",
    )
    trust_forwarded_for: bool = Field(
        False,
        description="Take the client address from X-Forwarded-For (set only behind a proxy "
        "that sets it)",
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-For is trusted, when trusted at all"
    )
    admin_token: SecretStr | None = Field(None, description="Bearer token; unset disables admin")
    session_secret: SecretStr | None = Field(
        None,
        description="Signs the operator console's session cookies; unset = a random one per "
        "process (sessions end at restart; every worker of a multi-worker server needs the "
        "same one, so set it there)",
    )
    session_max_age_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="Lifetime of a console session"
    )
    session_cookie_secure: bool = Field(
        False, description="Mark the console's cookies Secure (set it when served over HTTPS)"
    )
    console_low_confidence: float = Field(
        0.5, gt=0.0, le=1.0, description="The console counts a parse below this as low-confidence"
    )
    rasa_token: SecretStr | None = Field(
        None,
        description="Token /model/parse requires (query or body 'token', as Rasa's server reads "
        "it); unset: the token Rasa's clients send is accepted and ignored",
    )
    redis_url: str | None = Field(None, description="RQ queue for training jobs; unset = local")
    version_poll_seconds: float = Field(2.0, gt=0, description="Active-version poll period")
    job_queue: str = Field("slotfill-training", description="RQ queue name of training jobs")
    job_threads: int = Field(1, ge=1, description="torch threads of a training job")
    job_nice: int = Field(10, ge=0, le=19, description="Niceness of training processes")
    job_poll_seconds: float = Field(1.0, gt=0, description="Queued-job poll period (no Redis)")
    job_heartbeat_seconds: float = Field(2.0, gt=0, description="Running-job heartbeat period")
    job_stale_seconds: float = Field(
        60.0, gt=0, description="A running job with no heartbeat for this long has failed"
    )
    job_timeout_seconds: float = Field(6 * 3600, gt=0, description="Longest training job")

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from models.values import load_zone

        load_zone(name)  # ValueError names the bad zone at startup
        return name

    @model_validator(mode="after")
    def _int8_on_torch(self) -> Settings:
        if self.quantize == "int8" and self.engine != "torch":
            raise ValueError("SLOTFILL_QUANTIZE=int8 runs on torch: set SLOTFILL_ENGINE=torch")
        return self

    @property
    def admin_enabled(self) -> bool:
        """True when an admin token is configured (an empty one disables the admin API)."""
        return bool(self.admin_token and self.admin_token.get_secret_value())


def get_settings() -> Settings:
    """Build settings from the environment (call once, pass the object down)."""
    return Settings()
