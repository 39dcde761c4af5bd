"""The "try it" form: fields from a tool's inputSchema, and arguments back from what a person typed."""

from __future__ import annotations

import pytest

from meshgate.dashboard._schema import RAW, arguments_from, fields_of, takes_no_arguments
from meshgate.errors import InvalidInput

SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for"},
        "limit": {"type": "integer"},
        "ratio": {"type": "number"},
        "exact": {"type": "boolean"},
        "mode": {"type": "string", "enum": ["fast", "thorough"]},
        "filters": {"type": "object"},
    },
    "required": ["query"],
}


def form(**values: str) -> dict[str, list[str]]:
    return {f"arg.{name}": [value] for name, value in values.items()}


def test_each_property_becomes_a_field_of_its_kind() -> None:
    kinds = {field.name: (field.kind, field.required) for field in fields_of(SCHEMA)}
    assert kinds == {
        "query": ("text", True),
        "limit": ("integer", False),
        "ratio": ("number", False),
        "exact": ("boolean", False),
        "mode": ("choice", False),
        "filters": ("json", False),
    }


def test_typed_values_become_json_values_and_empty_optional_fields_are_left_out() -> None:
    fields = fields_of(SCHEMA)
    typed = form(query="cats", limit="3", ratio="0.5", exact="false", mode="fast", filters='{"a": [1]}')
    assert arguments_from(typed, fields) == {
        "query": "cats",
        "limit": 3,
        "ratio": 0.5,
        "exact": False,
        "mode": "fast",
        "filters": {"a": [1]},
    }
    assert arguments_from(form(query="cats", limit="", exact=""), fields) == {"query": "cats"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"limit": "3"}, "query is required"),
        ({"query": "x", "limit": "three"}, "limit must be a whole number"),
        ({"query": "x", "ratio": "half"}, "ratio must be a number"),
        ({"query": "x", "mode": "slow"}, "mode must be one of fast, thorough"),
        ({"query": "x", "filters": "{nope"}, "filters is not valid JSON"),
    ],
)
def test_a_wrong_value_says_which_field_and_why(values: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        arguments_from(form(**values), fields_of(SCHEMA))


def test_a_schema_without_properties_takes_a_json_object() -> None:
    assert arguments_from({RAW: ['{"x": 1}']}, []) == {"x": 1}
    assert arguments_from({RAW: [""]}, []) == {}
    with pytest.raises(InvalidInput, match="JSON object"):
        arguments_from({RAW: ["[1, 2]"]}, [])


@pytest.mark.parametrize(
    ("schema", "none"),
    [
        ({"type": "object"}, True),
        ({"type": "object", "properties": {}}, True),
        ({"type": "object", "properties": {}, "additionalProperties": False, "$schema": "x"}, True),
        ({}, True),
        (SCHEMA, False),
        ({"type": "object", "additionalProperties": True}, False),  # any object: the raw JSON box
        ({"type": "object", "oneOf": [{"properties": {"a": {}}}]}, False),
        ({"type": "object", "patternProperties": {"^x": {}}}, False),
    ],
)
def test_a_schema_with_nothing_to_fill_in_takes_no_arguments(schema: dict[str, object], none: bool) -> None:
    assert takes_no_arguments(schema) is none
