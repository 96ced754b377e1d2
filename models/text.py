"""Normalisation and tokenisation with character offsets: the only text preprocessing.

The trainer and the server both go through this module, so a token seen at training time
and the same word typed by a user map to the same vocabulary entry. Training corpora
(ATIS, SNIPS) are lower-case whitespace tokens; users type "Book a table for 2 at
7:30pm, please!". We therefore:

* split raw text into word tokens and single punctuation marks, keeping ``start``/``end``
  offsets into the text exactly as sent (``text[start:end] == token.text``);
* normalise each token for vocabulary look-up (NFKC, lower case, digits -> ``0``) while the
  character encoder still sees the real characters;
* let taggers drop stand-alone punctuation (never part of a slot in the corpora) while the
  sentiment model keeps it ("!!!" carries sentiment): :func:`tagger_tokens` and
  :func:`sentiment_tokens`, one tokenizer per model kind;
* for sentiment models trained with the ``tweet`` scheme, read social-media text as such
  (:func:`sentiment_words`): emoticons and punctuation runs are one token, elongations and
  other users' @handles are folded, #hashtags are split into ``#`` and their words.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# A word: letters/digits joined by inner apostrophes, dots, colons, hyphens or slashes
# ("o'clock", "7:30pm", "st.louis", "e-mail", "1/2"), optionally ending in a dot when it is
# a one-letter-per-dot abbreviation ("d.c.", "a.m."); otherwise one non-space symbol.
_TOKEN_RE = re.compile(
    r"https?://\S+"  # a URL is one token
    r"|(?:\w\.){2,}"  # abbreviations such as d.c. or a.m.
    r"|[@#]?\w+(?:['’:./-]\w+)*"  # words, numbers, times, @handles, #tags
    r"|[^\w\s]",  # any other single visible character
    re.UNICODE,
)
_DIGIT_RE = re.compile(r"\d")
_EDGE_PUNCT_RE = re.compile(r"^[^\w]+|[^\w]+$")
# A character for which str.isalnum() holds: re's \w is exactly isalnum() or "_".
_ALNUM_RE = re.compile(r"[^\W_]")

# Shape classes: case-insensitive on purpose. The tagging corpora are all lower case, so a
# case feature would be an input the model never saw trained at serving time.
SHAPES: tuple[str, ...] = ("<pad>", "alpha", "digit", "alnum", "punct", "mixed")


@dataclass(frozen=True, slots=True)
class Token:
    """One token of the raw text; ``text == raw[start:end]``."""

    text: str
    start: int
    end: int

    @property
    def is_punct(self) -> bool:
        """True for a token made only of punctuation or symbols."""
        return _ALNUM_RE.search(self.text) is None


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with character offsets into ``text`` as given.

    The regex word class misses combining marks (U+0301 in decomposed "café", Indic vowel
    signs), so a mark and the word characters after it are glued onto the token before them.
    """
    tokens: list[Token] = []
    for m in _TOKEN_RE.finditer(text):
        start, end = m.span()
        if (
            tokens
            and tokens[-1].end == start
            and (_is_mark(text[start]) or (_is_mark(text[start - 1]) and text[start].isalnum()))
        ):
            tokens[-1] = Token(text[tokens[-1].start : end], tokens[-1].start, end)
        else:
            tokens.append(Token(m.group(), start, end))
    return tokens


def count_tokens(text: str) -> int:
    """At least as many tokens as either model reads from ``text`` (the tokenizer's matches,
    before combining marks are glued on), without building them: what a text may cost."""
    return sum(1 for _ in _TOKEN_RE.finditer(text))


def word_tokens(text: str) -> list[Token]:
    """:func:`tokenize` without stand-alone punctuation."""
    return [tok for tok in tokenize(text) if not tok.is_punct]


def tagger_tokens(text: str) -> list[Token]:
    """Tokens a tagger reads from raw text: the words, or every symbol if there are none."""
    tokens = tokenize(text)
    return [t for t in tokens if not t.is_punct] or tokens


def sentiment_tokens(text: str) -> list[Token]:
    """Tokens the sentiment classifier reads from raw text: every token, punctuation too."""
    return tokenize(text)


@lru_cache(maxsize=1 << 16)  # chat traffic repeats words: compute each once
def normalize(token: str) -> str:
    """Vocabulary key of a token: NFKC, lower case, digits -> ``0``, edge punctuation off.

    Stripping edge punctuation makes the corpus token "st." and the server's "st" (whose
    dot the tokenizer split off) the same word.
    """
    if token.startswith(("http://", "https://")):
        return "<url>"
    key = _DIGIT_RE.sub("0", unicodedata.normalize("NFKC", token).lower())
    stripped = _EDGE_PUNCT_RE.sub("", key)
    return stripped or key


@lru_cache(maxsize=1 << 16)  # chat traffic repeats words: compute each once
def char_normalize(token: str) -> str:
    """What the character encoder sees: NFKC and lower case, digits kept."""
    return unicodedata.normalize("NFKC", token).lower()


@lru_cache(maxsize=1 << 16)  # chat traffic repeats words: compute each once
def shape(token: str) -> int:
    """Index into :data:`SHAPES` of a token's shape."""
    has_alpha = any(ch.isalpha() for ch in token)
    has_digit = any(ch.isdigit() for ch in token)
    has_other = any(not ch.isalnum() for ch in token)
    if has_other:
        return SHAPES.index("mixed") if (has_alpha or has_digit) else SHAPES.index("punct")
    if has_alpha and has_digit:
        return SHAPES.index("alnum")
    return SHAPES.index("digit") if has_digit else SHAPES.index("alpha")


def split_whitespace(line: str) -> list[str]:
    """Tokens of a corpus line (``seq.in``): split on any run of whitespace."""
    return line.split()


# Sentiment text schemes, stored in a sentiment model's config: ``plain`` is every token of
# :func:`sentiment_tokens` as written (models trained before the schemes existed), ``tweet``
# the social-media reading of :func:`tweet_words`.
TextScheme = Literal["plain", "tweet"]
TEXT_SCHEMES: tuple[str, ...] = ("plain", "tweet")

_EMOTICON = r"(?:[<>]?[:;=][-o'^]?[()\[\]dDpP/\\|*3]+(?!\w)|[)(\]\[][-o'^]?[:;=]|<3+)"
_TWEET_RE = re.compile(
    r"https?://\S+|www\.\S+"
    rf"|{_EMOTICON}"
    r"|(?:\w\.){2,}"
    r"|[@#]?\w+(?:['’:./-]\w+)*"
    r"|([!?.…])[!?.…]+"  # a run of ! ? . (…): one token
    r"|[^\w\s]",
    re.UNICODE,
)
_SAD_MOUTH = set("(/\\|[")
_ELONGATED_RE = re.compile(r"(\w)\1{2,}")
_CAMEL_RE = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")
MENTION = "xxuser"  # an @handle after the leading ones: which user carries no sentiment


def _emoticon(token: str) -> str:
    """A smiley's class as a word :func:`normalize` keeps: smile, frown, tongue or heart."""
    if token.startswith("<3"):
        return "xxheart"
    body = token.lstrip("<>")
    if body[0] in ")(][":  # mirrored: (: or ):
        return "xxfrown" if body[0] in ")]" else "xxsmile"
    mouth = body.rstrip("-o'^")[-1]
    if mouth in _SAD_MOUTH:
        return "xxfrown"
    return "xxtongue" if mouth in "pP" else "xxsmile"


def _punct_run(token: str) -> str:
    """``!!`` / ``??`` / ``?!`` / ``..`` for a run of two or more marks."""
    marks = set(token.replace("…", "..."))
    if marks <= {"."}:
        return ".."
    if {"!", "?"} <= marks:
        return "?!"
    return "!!" if "!" in marks else "??"


def tweet_words(text: str) -> list[str]:
    """What a ``tweet`` scheme sentiment model reads of ``text`` (before :func:`normalize`).

    HTML entities are decoded ("&amp;" from the Twitter API); the leading @handles (whom the
    text addresses: for customer-service tweets the company) stay words, later ones become
    :data:`MENTION`; ``#CustomerService`` reads ``#`` ``Customer`` ``Service``; letters
    repeated three times or more keep two ("sooo" -> "soo"); emoticons and runs of ! ? .
    become one canonical token each (":-(" -> "xxfrown", "!!!" -> "!!").
    """
    words: list[str] = []
    leading = True
    for m in _TWEET_RE.finditer(html.unescape(text)):
        tok = m.group()
        if tok.startswith("@") and len(tok) > 1:
            words.append(tok if leading else MENTION)
            continue
        leading = False
        if tok.startswith("#") and len(tok) > 1:
            words.append("#")
            words.extend(_ELONGATED_RE.sub(r"\1\1", w) for w in _CAMEL_RE.findall(tok[1:]))
        elif m.group(1) is not None:
            words.append(_punct_run(tok))
        elif tok[0] in "<>:;=)(][" and len(tok) > 1:
            words.append(_emoticon(tok))
        elif tok.startswith(("http://", "https://", "www.")):
            words.append("http://")  # normalize() keys every URL as <url>
        else:
            words.append(_ELONGATED_RE.sub(r"\1\1", tok))
    return words


def sentiment_words(text: str, scheme: TextScheme = "plain") -> list[str]:
    """The token strings a sentiment model of ``scheme`` reads of ``text``: training, evaluation
    and serving all go through here."""
    if scheme == "tweet":
        return tweet_words(text)
    return [t.text for t in sentiment_tokens(text)]
