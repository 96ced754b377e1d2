"""Database layer: ORM tables, engine factory and the small query functions the service uses."""

from app.db.base import Base, UTCDateTime
from app.db.engine import make_engine, make_session_factory
from app.db.repository import count_request_logs, get_request_log, insert_request_logs
from app.db.tables import ActiveModel, Feedback, ModelVersion, RequestLog, TrainingJob

__all__ = [
    "ActiveModel",
    "Base",
    "Feedback",
    "ModelVersion",
    "RequestLog",
    "TrainingJob",
    "UTCDateTime",
    "count_request_logs",
    "get_request_log",
    "insert_request_logs",
    "make_engine",
    "make_session_factory",
]
