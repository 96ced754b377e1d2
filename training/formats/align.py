"""Character spans -> the server's tokens and BIO tags, so training and serving see the
same tokens.

An example is tokenised by :func:`models.text.tagger_tokens`, the function the server
calls on a request's text. Where a span starts or ends inside a token ("7pm" with the
span "7"), that token is cut there: the tags can then mark the span exactly, but a server
reading the same text sees the uncut token, so every cut is counted (``slotfill data
check`` prints them). A span that covers no token (only punctuation or spaces), or that
overlaps an earlier one, cannot be tagged: it is left out and reported, never silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from models.text import Token, tagger_tokens
from training.formats.example import Example, SlotSpan


@dataclass(frozen=True)
class Aligned:
    """One example on tokens: ``tags`` per token; ``cuts``: tokens cut by a span boundary;
    ``problems``: spans left out, with the reason."""

    tokens: list[Token]
    tags: list[str]
    cuts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        """The token strings, what the networks read."""
        return [t.text for t in self.tokens]


def cut_tokens(
    text: str, tokens: Iterable[Token], points: Iterable[int]
) -> tuple[list[Token], int]:
    """``tokens`` with each one cut at the ``points`` strictly inside it; how many were cut."""
    inner = sorted(set(points))
    out: list[Token] = []
    cut = 0
    for tok in tokens:
        bounds = [p for p in inner if tok.start < p < tok.end]
        if not bounds:
            out.append(tok)
            continue
        cut += 1
        edges = [tok.start, *bounds, tok.end]
        out.extend(Token(text[a:b], a, b) for a, b in pairwise(edges))
    return out, cut


def _describe(span: SlotSpan, text: str) -> str:
    return f"{span.slot} [{span.start}, {span.end}) {text[span.start : span.end]!r}"


def align(example: Example) -> Aligned:
    """Tokens and BIO tags of ``example`` (see the module docstring)."""
    text = example.text
    base = list(example.tokens) if example.tokens is not None else tagger_tokens(text)
    points = [p for s in example.spans for p in (s.start, s.end)]
    tokens, cuts = cut_tokens(text, base, points)
    tags = ["O"] * len(tokens)
    problems: list[str] = []
    taken: list[SlotSpan] = []
    for span in sorted(example.spans, key=lambda s: (s.start, -s.end)):
        clash = next((t for t in taken if span.start < t.end and t.start < span.end), None)
        if clash is not None:
            problems.append(
                f"overlapping span {_describe(span, text)} with {_describe(clash, text)}"
            )
            continue
        inside = [i for i, t in enumerate(tokens) if span.start <= t.start and t.end <= span.end]
        if not inside:
            problems.append(f"misaligned span {_describe(span, text)} covers no token")
            continue
        taken.append(span)
        tags[inside[0]] = f"B-{span.slot}"
        for i in inside[1:]:
            tags[i] = f"I-{span.slot}"
    return Aligned(tokens, tags, cuts, problems)
