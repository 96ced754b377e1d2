"""models.text: offsets into the raw text, normalisation, word tokens.

hypothesis is not installed, so the offset property runs over a hand-picked list of awkward
strings instead.
"""

from __future__ import annotations

import unicodedata

import pytest

from models.text import (
    Token,
    normalize,
    sentiment_tokens,
    sentiment_words,
    tagger_tokens,
    tokenize,
    word_tokens,
)

AWKWARD_TEXTS = [
    "",
    "   ",
    "Book a table for 2 at 7:30pm, please!",
    "BoOk A TaBLe",
    "book  a   table\tfor\t\ttwo\n at 7pm\r\n",
    "Fly to St. Louis, MO... then D.C.!!!",
    "o'clock rock’n’roll e-mail 1/2 st.louis @delta #fail",
    "see https://example.com/a?b=1&c=2. ok",
    "Zürich Straße naïve façade Ørsted",
    "cafe\u0301 au lait",  # decomposed é: e + COMBINING ACUTE ACCENT
    "Zoe\u0308 and Zoë",
    "हिन्दी भाषा",  # Devanagari: vowel signs are combining marks
    "مرحبا بالعالم 123",  # RTL
    "שלום\u200f עולם",  # RTL with a right-to-left mark
    "I ❤️ it 👍🏽!! 👨‍👩‍👧 great",  # variation selector, skin tone, ZWJ family
    "東京へ行きたい",
    "½ ² ٣ ⅷ",
    "\u00a0non\u2009breaking\u3000spaces\u00a0",
    "a\u0000b",
    "!!!",
    "—",
]


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_offsets_slice_the_raw_text(text: str) -> None:
    tokens = tokenize(text)
    end = 0
    for tok in tokens:
        assert text[tok.start : tok.end] == tok.text
        assert tok.start >= end  # in order, not overlapping
        assert tok.text and not any(ch.isspace() for ch in tok.text)
        end = tok.end
    # Nothing but whitespace is dropped.
    covered = {i for tok in tokens for i in range(tok.start, tok.end)}
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)
    words = word_tokens(text)
    assert set(words) <= set(tokens)
    assert all(text[t.start : t.end] == t.text for t in words)


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "Book a table for 2 at 7:30pm, please!",
            ["Book", "a", "table", "for", "2", "at", "7:30pm", ",", "please", "!"],
        ),
        ("St. Louis", ["St", ".", "Louis"]),
        ("d.c. at 7 a.m.", ["d.c.", "at", "7", "a.m."]),
        ("o'clock e-mail 1/2", ["o'clock", "e-mail", "1/2"]),
        ("go to https://x.org/a?b=1 now", ["go", "to", "https://x.org/a?b=1", "now"]),
        ("@delta #fail", ["@delta", "#fail"]),
        ("wow!!!", ["wow", "!", "!", "!"]),
    ],
)
def test_tokenize_examples(text: str, expected: list[str]) -> None:
    assert [t.text for t in tokenize(text)] == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("cafe\u0301 au lait", ["cafe\u0301", "au", "lait"]),
        ("hindi हिन्दी", ["hindi", "हिन्दी"]),
        ("cafe\u0301s.", ["cafe\u0301s"]),
    ],
)
def test_combining_marks_stay_with_their_letter(text: str, expected: list[str]) -> None:
    assert [t.text for t in word_tokens(text)] == expected


def test_decomposed_and_composed_words_share_a_vocabulary_key() -> None:
    nfd = unicodedata.normalize("NFD", "Café Zoë")
    assert [normalize(t.text) for t in word_tokens(nfd)] == ["café", "zoë"]


@pytest.mark.parametrize(
    "token,key",
    [
        ("St.", "st"),
        ("st", "st"),
        ("Boston", "boston"),
        ("7:30PM", "0:00pm"),
        ("2024", "0000"),
        ("٣", "0"),  # any Unicode digit
        ("UA212", "ua000"),
        ("https://example.com/x", "<url>"),
        ("http://a.b", "<url>"),
        ("d.c.", "d.c"),
        ("ｂｏｏｋ", "book"),  # NFKC folds full-width letters
        ("...", "..."),  # only punctuation: kept rather than emptied
        ("'hello'", "hello"),
    ],
)
def test_normalize(token: str, key: str) -> None:
    assert normalize(token) == key


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hello, world!", ["Hello", "world"]),
        ("a - b", ["a", "b"]),
        ("!!! ??? ...", []),
        ("I ❤️ NYC 👍", ["I", "NYC"]),
        ("7:30pm, St. Louis.", ["7:30pm", "St", "Louis"]),
    ],
)
def test_word_tokens_drop_standalone_punctuation(text: str, expected: list[str]) -> None:
    assert [t.text for t in word_tokens(text)] == expected


@pytest.mark.parametrize(
    "text,tagger,sentiment",
    [
        (
            "Great crew, thanks!!",
            ["Great", "crew", "thanks"],
            ["Great", "crew", ",", "thanks", "!", "!"],
        ),
        ("?!", ["?", "!"], ["?", "!"]),  # no words: a tagger reads the symbols
        ("", [], []),
    ],
)
def test_one_tokenizer_per_model_kind(text: str, tagger: list[str], sentiment: list[str]) -> None:
    assert [t.text for t in tagger_tokens(text)] == tagger
    assert [t.text for t in sentiment_tokens(text)] == sentiment


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "@VirginAmerica @dhepburn I &lt;3 it!!! sooo good :-D",
            ["@VirginAmerica", "@dhepburn", "I", "xxheart", "it", "!!", "soo", "good", "xxsmile"],
        ),
        ("@united thanks @JohnDoe", ["@united", "thanks", "xxuser"]),  # only leading handles
        ("#CustomerService #fail", ["#", "Customer", "Service", "#", "fail"]),
        ("late :( ): ;p (:", ["late", "xxfrown", "xxfrown", "xxtongue", "xxsmile"]),
        ("really?!?! ... ok?? …", ["really", "?!", "..", "ok", "??", "…"]),
        ("at 10:30pm, see http://t.co/x", ["at", "10:30pm", ",", "see", "http://"]),
    ],
)
def test_tweet_scheme(text: str, expected: list[str]) -> None:
    assert sentiment_words(text, "tweet") == expected
    # Every placeholder survives normalize(), which the model applies after this.
    assert normalize("xxheart") == "xxheart" and normalize("http://") == "<url>"


@pytest.mark.parametrize("text", ["Great crew, thanks!!", "@united :( #fail", "", "?!"])
def test_plain_scheme_is_the_sentiment_tokenizer(text: str) -> None:
    """Models trained before the schemes existed read text exactly as they did."""
    assert sentiment_words(text) == [t.text for t in sentiment_tokens(text)]


def test_is_punct_means_no_character_is_alphanumeric() -> None:
    """``Token.is_punct`` tests with a regular expression; ``str.isalnum`` is the definition,
    checked on every code point (letters, digits, marks, "_", symbols of every script)."""
    wrong = [
        hex(code)
        for code in range(0x110000)
        if Token(chr(code), 0, 1).is_punct == chr(code).isalnum()
    ]
    assert wrong == []
    assert Token("?!", 0, 2).is_punct and Token("_", 0, 1).is_punct
    assert not Token("a?", 0, 2).is_punct and not Token("٣", 0, 1).is_punct
