"""training.data: every malformed fixture stops with a DataError naming the file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from training.data import DataError, read_slot_folder, read_tsv

MALFORMED = Path(__file__).resolve().parents[1] / "data" / "malformed"

# fixture -> (file the message must name, its line or None, what the message must say);
# see tests/data/malformed/README.md.
SLOT_CASES = {
    "count_mismatch": ("seq.out", 3, r"4 tags for 5 tokens"),
    "line_mismatch": ("seq.out", None, r"3 lines, but .*seq\.in has 4"),
    "empty": ("seq.in", None, r"file is empty"),
    "bad_encoding": ("seq.in", 2, r"not valid UTF-8"),
}
TSV_CASES = {
    "bad_header.tsv": (1, r"expected the header 'text<TAB>label', got 'sentence\\tsentiment'"),
    "bad_row.tsv": (4, r"expected 'text<TAB>label', got 'Is flight UA212 on time\? neutral'"),
}


@pytest.mark.parametrize("name,expected", SLOT_CASES.items(), ids=SLOT_CASES.keys())
def test_malformed_slot_folders(name: str, expected: tuple[str, int | None, str]) -> None:
    filename, line, what = expected
    path = MALFORMED / name / filename
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    with pytest.raises(DataError, match=what) as info:
        read_slot_folder(MALFORMED / name)
    assert str(info.value).startswith(where)


@pytest.mark.parametrize("name,expected", TSV_CASES.items(), ids=TSV_CASES.keys())
def test_malformed_tsv(name: str, expected: tuple[int, str]) -> None:
    line, what = expected
    with pytest.raises(DataError, match=what) as info:
        read_tsv(MALFORMED / name)
    assert str(info.value).startswith(f"{MALFORMED / name}:{line}:")


def test_invalid_bio_is_repaired_and_reported() -> None:
    data = read_slot_folder(MALFORMED / "invalid_bio")
    assert data.tags[1] == ["O", "O", "O", "O", "B-city"]
    assert data.tags[2] == ["O", "O", "O", "O", "B-city", "I-city"]  # valid lines untouched
    seq_out = MALFORMED / "invalid_bio" / "seq.out"
    assert data.repairs == [f"{seq_out}:2: I-city at token 5 follows O; read as B-city"]


def write_folder(folder: Path, seq_in: str, seq_out: str, label: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text(seq_in, encoding="utf-8")
    (folder / "seq.out").write_text(seq_out, encoding="utf-8")
    if label is not None:
        (folder / "label").write_text(label, encoding="utf-8")
    return folder


def test_snips_style_spaces_are_handled(tmp_path: Path) -> None:
    # SNIPS files carry double and trailing spaces; ATIS-style CRLF endings occur too.
    folder = write_folder(
        tmp_path / "snips",
        "add  sabrina salerno to the grime instrumentals playlist \r\nplay music \n",
        "O  B-artist I-artist O O B-playlist I-playlist O \r\nO O\n",
        "AddToPlaylist \nPlayMusic\n",
    )
    data = read_slot_folder(folder)
    assert data.tokens == [
        ["add", "sabrina", "salerno", "to", "the", "grime", "instrumentals", "playlist"],
        ["play", "music"],
    ]
    assert data.tags[0] == ["O", "B-artist", "I-artist", "O", "O", "B-playlist", "I-playlist", "O"]
    assert data.intents == ["AddToPlaylist", "PlayMusic"]
    assert data.repairs == []


def test_label_file_is_optional(tmp_path: Path) -> None:
    data = read_slot_folder(write_folder(tmp_path / "d", "hi there\n", "O O\n"))
    assert data.intents is None and len(data) == 1


@pytest.mark.parametrize(
    "seq_in,seq_out,label,bad_file,message",
    [
        ("a b\n\nc\n", "O O\n\nO\n", None, "seq.in", r":2: empty utterance"),
        (
            "a b\n",
            "O X-city\n",
            None,
            "seq.out",
            r":1: tag 'X-city' at token 2 is not O, B-x or I-x",
        ),
        ("a b\n", "O B-\n", None, "seq.out", r":1: tag 'B-' at token 2"),
        ("a\nb\n", "O\nO\n", "greet\n \n", "label", r":2: empty intent label"),
        ("a\nb\n", "O\nO\n", "greet\n", "label", r": 1 lines, but .*seq\.in has 2"),
    ],
)
def test_slot_folder_errors(
    tmp_path: Path, seq_in: str, seq_out: str, label: str | None, bad_file: str, message: str
) -> None:
    folder = write_folder(tmp_path / "d", seq_in, seq_out, label)
    with pytest.raises(DataError, match=message) as info:
        read_slot_folder(folder)
    assert str(info.value).startswith(str(folder / bad_file))


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        read_slot_folder(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "seq.in").write_text("a\n")
    with pytest.raises(
        DataError, match=re.escape(f"{tmp_path / 'half' / 'seq.out'}: file not found")
    ):
        read_slot_folder(tmp_path / "half")


def test_tsv_reads_rows_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\r\n Great crew! \tpositive\nA\ttab\tinside\tneutral \n\n")
    data = read_tsv(path)
    assert data.texts == ["Great crew!", "A\ttab\tinside"]  # the label is after the last tab
    assert data.labels == ["positive", "neutral"]


@pytest.mark.parametrize(
    "content,message",
    [
        ("text\tlabel\n", r": no rows after the header"),
        ("text\tlabel\n\tpositive\n", r":2: expected 'text<TAB>label'"),
        ("text\tlabel\nhello\t \n", r":2: expected 'text<TAB>label'"),
        ("label\ttext\nhello\tpositive\n", r":1: expected the header"),
        ("", r": file is empty"),
    ],
)
def test_tsv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_tsv(path)
    assert str(info.value).startswith(str(path))
