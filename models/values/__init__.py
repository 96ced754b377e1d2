"""Typed slot values: dates, times, numbers, amounts and synonyms resolved against the user's
clock (``resolve``), and each slot's value type (``schema``)."""

from models.values.reference import Reference, load_zone, make_reference
from models.values.resolve import resolve
from models.values.synonyms import Synonyms, fold
from models.values.types import Normalized, ValueType

__all__ = [
    "Normalized",
    "Reference",
    "Synonyms",
    "ValueType",
    "fold",
    "load_zone",
    "make_reference",
    "resolve",
]
