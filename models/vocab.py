"""String <-> index tables stored inside artifacts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """An ordered table of strings; index 0 is padding and, if present, 1 is unknown."""

    def __init__(self, items: Sequence[str], *, with_unk: bool = True) -> None:
        specials = [PAD, UNK] if with_unk else [PAD]
        seen = set(specials)
        self.itos: list[str] = list(specials)
        for item in items:
            if item not in seen:
                seen.add(item)
                self.itos.append(item)
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        self.unk_index: int | None = 1 if with_unk else None

    @classmethod
    def build(cls, tokens: Iterable[str], *, min_count: int = 1, with_unk: bool = True) -> Vocab:
        """Vocabulary of ``tokens`` seen at least ``min_count`` times, most frequent first."""
        counts = Counter(tokens)
        ordered = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        return cls(ordered, with_unk=with_unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: object) -> bool:
        return item in self.stoi

    def index(self, item: str) -> int:
        """Index of ``item``; unknown items map to ``<unk>`` (KeyError if there is none)."""
        found = self.stoi.get(item)
        if found is not None:
            return found
        if self.unk_index is None:
            raise KeyError(f"{item!r} is not in the vocabulary")
        return self.unk_index

    def to_dict(self) -> dict[str, object]:
        """JSON form, as stored in ``manifest.json``."""
        return {"itos": self.itos, "with_unk": self.unk_index is not None}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Vocab:
        """Inverse of :meth:`to_dict`; validates the special entries."""
        itos = data.get("itos")
        with_unk = bool(data.get("with_unk", True))
        specials = [PAD, UNK] if with_unk else [PAD]
        if not isinstance(itos, list) or itos[: len(specials)] != specials:
            raise ValueError("expected a vocabulary starting with its special entries")
        return cls([str(s) for s in itos[len(specials) :]], with_unk=with_unk)


class LabelSet:
    """Ordered labels (tags or classes) with no padding or unknown entry."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels: list[str] = list(dict.fromkeys(labels))
        self.index_of: dict[str, int] = {s: i for i, s in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, item: object) -> bool:
        return item in self.index_of

    def to_list(self) -> list[str]:
        """JSON form."""
        return list(self.labels)
