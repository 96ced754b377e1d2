"""Synonyms: the words a user types mapped to one canonical category value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping


def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive key: "  São  Paulo " -> "sao paulo"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", bare.casefold()).strip(" .,;:!?\"'")


class Synonyms:
    """Canonical value -> variants; a canonical value is a variant of itself."""

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self.table = {canonical: tuple(variants) for canonical, variants in table.items()}
        self._index: dict[str, str] = {}
        for canonical, variants in self.table.items():
            for text in (canonical, *variants):
                self._index.setdefault(fold(text), canonical)

    def __len__(self) -> int:
        return len(self.table)

    def lookup(self, text: str) -> str | None:
        """The canonical value ``text`` stands for, or None."""
        return self._index.get(fold(text))
