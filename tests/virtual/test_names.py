"""Exposed names: namespaced, valid MCP tool names, deterministic and collision-free whatever the input."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from meshgate.virtual.names import exposed_names, slugs

VALID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def test_names_are_prefixed_with_the_connection_slug() -> None:
    names = exposed_names([("c1", "github", "create_issue"), ("c2", "slack", "post")])
    assert names == {("c1", "create_issue"): "github_create_issue", ("c2", "post"): "slack_post"}


def test_long_names_are_shortened_with_a_stable_hash() -> None:
    long_name = "a" * 100
    first = exposed_names([("c1", "github", long_name)])[("c1", long_name)]
    again = exposed_names([("c1", "github", long_name), ("c2", "x", "other")])[("c1", long_name)]
    assert VALID.match(first)
    assert first == again
    assert first.startswith("github_aaaa")


def test_names_that_clash_after_cleaning_both_get_distinct_hashes() -> None:
    names = exposed_names([("c1", "svc", "do thing"), ("c1", "svc", "do_thing"), ("c1", "svc", "do/thing")])
    assert len(set(names.values())) == 3
    assert all(VALID.match(name) and name.startswith("svc_do_thing_") for name in names.values())


def test_a_rename_wins_and_a_generated_name_steps_aside() -> None:
    names = exposed_names([("c1", "svc", "a"), ("c2", "other", "b")], fixed={("c2", "b"): "svc_a"})
    assert names[("c2", "b")] == "svc_a"
    assert names[("c1", "a")] != "svc_a"
    assert VALID.match(names[("c1", "a")])


def test_connection_slugs_are_distinct_in_member_order() -> None:
    assert slugs([("1", "GitHub"), ("2", "github"), ("3", "!!!")]) == {"1": "github", "2": "github_2", "3": "c3"}


@given(
    st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.text(min_size=1, max_size=120)),
        max_size=60,
        unique=True,
    )
)
def test_any_tool_names_give_valid_distinct_deterministic_names(tools: list[tuple[str, str]]) -> None:
    prefixes = slugs([("c1", "Alpha"), ("c2", "alpha"), ("c3", "a" * 40)])
    wanted = [(connection, prefixes[connection], name) for connection, name in tools]
    names = exposed_names(wanted)
    assert set(names) == set(tools)
    assert len(set(names.values())) == len(tools)
    assert all(VALID.match(name) for name in names.values())
    assert exposed_names(list(reversed(wanted))) == names
