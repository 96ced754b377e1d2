"""Slot types: declared in slots.yaml, inferred from gold values, else guessed from the name."""

from __future__ import annotations

import pytest

from models.values.schema import (
    SlotSpec,
    build_schema,
    parse_schema,
    schema_from_json,
    schema_to_json,
    type_from_values,
)
from models.values.types import ValueType


def test_nlupp_value_dicts_map_onto_types() -> None:
    date = type_from_values("date_to", [("May", {"day": 31, "month": 5, "year": 2022})])
    assert date == SlotSpec(ValueType.DATE, "values", "end")
    time = type_from_values("time", [("7", {"hour": 7, "minute": 0})])
    assert time is not None and time.type is ValueType.TIME
    money = type_from_values("amount_of_money", [("$5", {"amount": 5.0, "currency": "USD"})])
    assert money is not None and money.type is ValueType.MONEY
    number = type_from_values("number", [("six", 6)])
    assert number is not None and number.type is ValueType.NUMBER
    people = type_from_values("number_of_people", [("two", 2)])
    assert people is not None and people.type is ValueType.COUNT


def test_canonical_strings_become_a_category_with_synonyms() -> None:
    spec = type_from_values("city", [("NYC", "New York"), ("new york", "New York"), ("LA", "LA")])
    assert spec is not None and spec.type is ValueType.CATEGORY
    assert spec.synonyms == {"LA": (), "New York": ("NYC", "new york")}
    table = spec.synonym_table()
    assert table is not None and table.lookup("nyc") == "New York"
    same = type_from_values("person_name", [("ann", "ann"), ("bo", "bo")])
    assert same is not None and same.type is ValueType.TEXT


def test_the_schema_file_wins_and_a_name_guess_is_warned_about() -> None:
    declared = parse_schema(
        {
            "slots": {
                "time": "datetime",
                "cuisine": {"type": "category", "synonyms": {"Thai": ["thai food"]}},
            }
        }
    )
    specs, warnings = build_schema(
        ["time", "cuisine", "party_size", "restaurant_name"],
        declared,
        {"time": [("7", {"hour": 7, "minute": 0})]},
    )
    assert specs["time"].type is ValueType.DATETIME and specs["time"].source == "schema"
    assert specs["cuisine"].synonyms == {"Thai": ("thai food",)}
    assert specs["party_size"] == SlotSpec(ValueType.COUNT, "name")
    assert specs["restaurant_name"].type is ValueType.TEXT
    assert len(warnings) == 2 and "'party_size'" in warnings[0] and "'count'" in warnings[0]


def test_the_schema_round_trips_through_the_manifest_json() -> None:
    specs = {"cuisine": SlotSpec(ValueType.CATEGORY, synonyms={"Thai": ("thai food",)}),
             "date_to": SlotSpec(ValueType.DATE, "values", "end")}  # fmt: skip
    assert schema_from_json(schema_to_json(specs)) == specs


@pytest.mark.parametrize(
    ("document", "message"),
    [([1, 2], "mapping"), ({"slots": {"x": "colour"}}, "type must be one of"),
     ({"x": {"type": "category", "synonyms": {"a": "b"}}}, "synonyms"),
     ({"x": {"type": "date", "bound": "middle"}}, "bound")],
)  # fmt: skip
def test_a_bad_schema_file_says_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schema(document)
