"""Permission maps and the intersection rule, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshgate.access import FULL_ACCESS, Principal, covers, map_allows, parse_permission_map
from meshgate.errors import InvalidInput

RESOURCES = st.sampled_from(["self", "conn-1", "conn-2", "*"])
TOOLS = st.sampled_from(["A", "B", "C", "*"])
MAPS = st.dictionaries(RESOURCES, st.lists(TOOLS, max_size=3), max_size=4)


def test_exact_and_wildcard_grants() -> None:
    grants = {"self": ["ORGANIZATION_LIST"], "conn-1": ["*"], "*": ["ping"]}
    assert map_allows(grants, "self", "ORGANIZATION_LIST")
    assert not map_allows(grants, "self", "ORGANIZATION_DELETE")
    assert map_allows(grants, "conn-1", "anything")
    assert map_allows(grants, "conn-9", "ping")
    assert not map_allows(grants, "conn-9", "other")
    assert map_allows(FULL_ACCESS, "whatever", "whatever")
    assert not map_allows({}, "self", "ORGANIZATION_LIST")


@given(MAPS, MAPS, RESOURCES, TOOLS)
def test_principal_allows_exactly_the_intersection(
    role: dict[str, list[str]], key: dict[str, list[str]], resource: str, tool: str
) -> None:
    principal = Principal("u", "o", "o", "custom", (role, key), api_key_id="k")
    assert principal.allows(resource, tool) == (map_allows(role, resource, tool) and map_allows(key, resource, tool))


@given(MAPS, MAPS, RESOURCES, TOOLS)
def test_covers_means_nothing_wanted_is_beyond_the_holder(
    holder: dict[str, list[str]], wanted: dict[str, list[str]], resource: str, tool: str
) -> None:
    if covers(holder, wanted) and map_allows(wanted, resource, tool):
        assert map_allows(holder, resource, tool)


def test_wildcards_are_covered_only_by_wildcards() -> None:
    assert not covers({"self": ["A", "B"]}, {"self": ["*"]})
    assert not covers({"self": ["*"]}, {"*": ["A"]})
    assert covers({"*": ["*"]}, {"*": ["*"], "self": ["A"]})
    assert covers({"self": ["*"]}, {"self": ["A", "*"]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["self"], "must be an object"),
        ({"self": "A"}, "must be a list of tool names"),
        ({"self": [1]}, "must be a list of tool names"),
        ({"bad resource": ["A"]}, "is not a valid resource name"),
        ({"self": ["bad tool"]}, "is not a valid tool name"),
    ],
)
def test_malformed_maps_are_refused_with_what_is_allowed(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_permission_map(value)


def test_parsed_maps_are_deduplicated_and_sorted() -> None:
    assert parse_permission_map({"self": ["B", "A", "B"]}) == {"self": ["A", "B"]}
