"""Arguments templates follow RFC 6901 for pointers and fill values of any type, or text inside strings."""

from __future__ import annotations

from typing import Any

import pytest

from meshgate.errors import InvalidInput
from meshgate.events.templates import MissingValue, checked_template, filled, resolve

EVENT: dict[str, Any] = {
    "type": "a.b",
    "data": {"a/b": 1, "m~n": 2, "list": [10, 20], "": "empty key", "nested": {"ok": True}},
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("/data/a~1b", 1),  # ~1 is /
        ("/data/m~0n", 2),  # ~0 is ~
        ("/data/list/1", 20),
        ("/data/", "empty key"),
        ("/data/nested", {"ok": True}),
    ],
)
def test_pointers_resolve_as_rfc_6901_says(pointer: str, expected: Any) -> None:
    assert resolve(EVENT, pointer) == expected


@pytest.mark.parametrize("pointer", ["/data/list/2", "/data/list/01", "/data/list/-", "/nope", "/type/x"])
def test_a_pointer_the_event_lacks_is_missing(pointer: str) -> None:
    with pytest.raises(MissingValue):
        resolve(EVENT, pointer)


def test_values_keep_their_type_and_strings_get_text() -> None:
    template = checked_template(
        {
            "whole": {"$event": "/data/nested"},
            "in": ["{{/type}} has {{/data/list}} and {{/data/nested/ok}}"],
            "fallback": {"$event": "/data/absent", "default": None},
            "plain": {"x": [1, "two", {"three": 3}]},
        }
    )
    assert filled(template, EVENT) == {
        "whole": {"ok": True},
        "in": ["a.b has [10,20] and true"],
        "fallback": None,
        "plain": {"x": [1, "two", {"three": 3}]},
    }


def test_a_missing_value_in_a_string_names_its_pointer() -> None:
    with pytest.raises(MissingValue, match="/data/absent"):
        filled(checked_template({"text": "x {{/data/absent}}"}), EVENT)


@pytest.mark.parametrize("template", [[], "text", {"a": {"$event": "/x", "$event2": 1}}, {"$x": 1}])
def test_templates_that_are_not_objects_or_use_reserved_keys_are_refused(template: Any) -> None:
    with pytest.raises(InvalidInput):
        checked_template(template)
