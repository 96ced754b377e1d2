"""BIO folders (``seq.in`` / ``seq.out`` / ``label``) as examples.

The corpus tokens are kept as given (``Example.tokens``) so that a model trained on ATIS
or SNIPS reads exactly the tokens it always did; the text is those tokens joined by single
spaces and the spans are their chunks' character ranges.
"""

from __future__ import annotations

from pathlib import Path

from models.text import Token
from training.data import read_slot_folder
from training.formats.example import DataSplits, Example, SlotSpan


def read_bio_split(folder: Path, split_intents: bool = False) -> tuple[list[Example], list[str]]:
    """Examples of one BIO folder and the reader's repair notes.

    ``split_intents``: read ``a#b`` as the two intents ``a`` and ``b`` (multi-label
    training); otherwise it is one label, as single-label models always read it.
    """
    from models.predictor import bio_spans  # imports torch: not when the CLI only parses

    data = read_slot_folder(folder)
    examples = []
    for i, (toks, tags) in enumerate(zip(data.tokens, data.tags, strict=True)):
        tokens: list[Token] = []
        offset = 0
        for tok in toks:
            tokens.append(Token(tok, offset, offset + len(tok)))
            offset += len(tok) + 1
        spans = tuple(
            SlotSpan(tokens[s.first].start, tokens[s.last].end, s.slot) for s in bio_spans(tags)
        )
        intents: tuple[str, ...] = ()
        if data.intents is not None:
            label = data.intents[i]
            intents = tuple(label.split("#")) if split_intents else (label,)
        examples.append(
            Example(
                " ".join(toks),
                spans,
                intents,
                where=f"{folder / 'seq.in'}:{i + 1}",
                tokens=tuple(tokens),
            )
        )
    return examples, data.repairs


def read_bio(folder: Path, split_intents: bool = False) -> DataSplits:
    """``folder/train`` and ``folder/valid``, each a BIO folder."""
    train, train_notes = read_bio_split(folder / "train", split_intents)
    valid, valid_notes = read_bio_split(folder / "valid", split_intents)
    return DataSplits(
        "bio", train, valid, [folder / "train"], [folder / "valid"], notes=train_notes + valid_notes
    )
