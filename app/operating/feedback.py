"""Corrections of logged parses: checking them against the text, and adding them to a data
set as training examples.

Slot corrections are character spans into the utterance, as ``/v1/parse`` returns them. They
become BIO tags over the tokens the tagger reads (:func:`models.text.tagger_tokens`, the
server's own tokenizer), so a corrected utterance trains exactly what serving will see.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.admin import add_feedback, feedback_of_request, feedback_with_logs
from app.db.tables import Feedback, FeedbackStatus, RequestLog
from app.errors import FeedbackReviewed, InvalidFeedback
from app.paths import SINGLE_TEXT_ROUTES
from models.text import tagger_tokens


def check_slots(
    text: str, slots: Sequence[Mapping[str, Any]], *, reveal: bool = True
) -> list[dict[str, Any]]:
    """``[{"slot", "start", "end"}]`` sorted, if every span lies on token boundaries of
    ``text`` and none overlap; else ``InvalidFeedback`` saying which does not. Without
    ``reveal`` the message quotes nothing of ``text`` (for a caller who only knows a request
    id, the logged utterance is private)."""
    tokens = tagger_tokens(text)
    starts = {t.start for t in tokens}
    ends = {t.end for t in tokens}
    spans = sorted(slots, key=lambda s: (int(s["start"]), int(s["end"])))
    checked: list[dict[str, Any]] = []
    previous_end = -1
    for span in spans:
        name, start, end = str(span["slot"]), int(span["start"]), int(span["end"])
        where = f"slot '{name}' [{start}, {end})"
        if not 0 <= start < end <= len(text):
            length = f" ({len(text)} characters)" if reveal else ""
            raise InvalidFeedback(f"{where} is outside the text{length}")
        value = span.get("value")
        if value is not None and value != text[start:end]:
            found = f" != text {text[start:end]!r}" if reveal else " is not the text there"
            raise InvalidFeedback(f"{where}: value {value!r}{found}")
        if start not in starts or end not in ends:
            words = f" of {[t.text for t in tokens]}" if reveal else ""
            raise InvalidFeedback(f"{where} does not start and end on a token{words}")
        if start < previous_end:
            raise InvalidFeedback(f"{where} overlaps the slot before it")
        previous_end = end
        checked.append({"slot": name, "start": start, "end": end})
    return checked


def to_bio(text: str, slots: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Tokens and BIO tags of ``text`` with character-span ``slots`` (checked spans)."""
    tokens = tagger_tokens(text)
    tags = ["O"] * len(tokens)
    for span in slots:
        inside = [i for i, t in enumerate(tokens) if span["start"] <= t.start < span["end"]]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{span['slot']}"
    return [t.text for t in tokens], tags


def logged_parse(row: RequestLog | None) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Intent and slots the server answered for a logged request, if the log has them."""
    response = row.response if row is not None else None
    if not isinstance(response, dict):
        return None, None
    intent = response.get("intent")
    name = intent.get("name") if isinstance(intent, dict) else None
    slots = response.get("slots")
    return name, slots if isinstance(slots, list) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _append(path: Path, lines: list[str]) -> None:
    existing = path.read_text(encoding="utf-8")
    if existing and not existing.endswith("\n"):
        existing += "\n"
    path.write_text(existing + "".join(f"{line}\n" for line in lines), encoding="utf-8")


def export_with_feedback(
    sessions: sessionmaker[Session],
    source: Path,
    task: str,
    dest: Path,
    model: str | None = None,
) -> tuple[Path, int]:
    """Copy the data set at ``source`` to ``dest`` with the accepted corrections (of parses
    by tagger ``model``, if given) added to its training split; ``(dest, number of
    utterances added)``.

    For a tagger, a correction of only the intent keeps the slots the server answered, and
    the reverse; corrections of sentiment alone add nothing. For a sentiment model only
    corrections with a sentiment label count.
    """
    shutil.copytree(source, dest)
    with sessions() as session:
        rows = feedback_with_logs(session, model)
    added = 0
    if task == "slots":
        seq_in, seq_out, labels = [], [], []
        for fb, log_row in rows:
            if fb.intent is None and fb.slots is None:
                continue
            logged_intent, logged_slots = logged_parse(log_row)
            intent = fb.intent or logged_intent
            slots = fb.slots if fb.slots is not None else logged_slots
            if intent is None or slots is None:
                continue
            tokens, tags = to_bio(fb.text, slots)
            seq_in.append(" ".join(tokens))
            seq_out.append(" ".join(tags))
            labels.append(intent)
        if seq_in:
            _append(dest / "train" / "seq.in", seq_in)
            _append(dest / "train" / "seq.out", seq_out)
            if (dest / "train" / "label").exists():
                _append(dest / "train" / "label", labels)
        added = len(seq_in)
    else:
        lines = [f"{_one_line(fb.text)}\t{fb.sentiment}" for fb, _ in rows if fb.sentiment]
        if lines:
            _append(dest / "train.tsv", lines)
        added = len(lines)
    return dest, added


def feedback_row(
    log_row: RequestLog,
    intent: str | None,
    slots: Sequence[Mapping[str, Any]] | None,
    sentiment: str | None,
    *,
    author: str | None = None,
) -> Feedback:
    """A pending ``Feedback`` row for a correction of ``log_row`` by ``author`` (None: a
    client, who is told nothing of the logged text), tied to the tagger that made the parse;
    ``InvalidFeedback`` if the logged request cannot take one."""
    if intent is None and slots is None and sentiment is None:
        raise InvalidFeedback("expected at least one of 'intent', 'slots' or 'sentiment'")
    if log_row.route not in SINGLE_TEXT_ROUTES or log_row.status_code != 200:
        raise InvalidFeedback(
            "corrections apply to successful single-utterance requests "
            f"({', '.join(sorted(SINGLE_TEXT_ROUTES))})"
        )
    if log_row.text_mode != "full":
        raise InvalidFeedback(
            f"the request log keeps no text of this request (log_redaction={log_row.text_mode})"
        )
    reveal = author is not None
    checked = check_slots(log_row.text, slots, reveal=reveal) if slots is not None else None
    versions = log_row.model_versions if isinstance(log_row.model_versions, dict) else {}
    tagger = versions.get("tagger")
    return Feedback(
        request_id=log_row.request_id,
        text=log_row.text,
        intent=intent,
        slots=checked,
        sentiment=sentiment,
        model=str(tagger) if tagger else None,
        status=FeedbackStatus.pending,
        author=author,
    )


def save_correction(
    session: Session, correction: Feedback, *, may_replace_reviewed: bool
) -> Feedback:
    """Store ``correction`` as the one correction of its request: it replaces an earlier one
    (pending again). A client (``may_replace_reviewed`` False) cannot replace one an admin
    already reviewed: ``FeedbackReviewed``. The caller owns the transaction."""
    existing = feedback_of_request(session, correction.request_id)
    if existing is None:
        return add_feedback(session, correction)
    if existing.status != FeedbackStatus.pending and not may_replace_reviewed:
        raise FeedbackReviewed(
            f"the correction of request '{correction.request_id}' was already {existing.status}"
        )
    for column in ("text", "intent", "slots", "sentiment", "model", "author"):
        setattr(existing, column, getattr(correction, column))
    existing.status = FeedbackStatus.pending
    existing.reviewed_by = existing.reviewed_at = None
    existing.created_at = datetime.now(UTC)
    session.flush()
    return existing
