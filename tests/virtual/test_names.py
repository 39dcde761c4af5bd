"""Exposed names: namespaced, valid MCP tool names, deterministic and collision-free whatever the input."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from meshgate.virtual.catalog import UpstreamLists
from meshgate.virtual.models import Member, ToolOverride, VirtualMcp
from meshgate.virtual.names import exposed_names, slugs
from meshgate.virtual.view import build_view, tool_names

VALID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def test_names_are_prefixed_with_the_connection_slug() -> None:
    names = exposed_names([("c1", "github", "create_issue"), ("c2", "slack", "post")])
    assert names == {("c1", "create_issue"): "github_create_issue", ("c2", "post"): "slack_post"}


def test_a_name_that_already_carries_its_connection_slug_keeps_it_once() -> None:
    names = exposed_names(
        [("c1", "git", "git_status"), ("c1", "git", "git"), ("c1", "git", "Git-log"), ("c1", "git", "gitx_diff")]
    )
    assert names == {
        ("c1", "git_status"): "git_status",
        ("c1", "git"): "git",
        ("c1", "Git-log"): "Git-log",
        ("c1", "gitx_diff"): "git_gitx_diff",  # `gitx` is another word, not the slug
    }


def test_a_kept_prefix_that_meets_a_prefixed_name_gives_both_distinct_hashes() -> None:
    # `status` becomes `git_status`, as does `git_status` kept as it is: neither may take the plain name.
    names = exposed_names([("c1", "git", "status"), ("c1", "git", "git_status")])
    assert len(set(names.values())) == 2
    assert all(VALID.match(name) and name.startswith("git_status_") for name in names.values())
    assert "git_status" not in names.values()


def test_a_kept_prefix_that_meets_another_connections_name_gives_both_distinct_hashes() -> None:
    prefixes = slugs([("c1", "git"), ("c2", "git 2")])
    assert prefixes == {"c1": "git", "c2": "git_2"}
    names = exposed_names([("c1", "git", "git_2_status"), ("c2", "git_2", "status"), ("c2", "git_2", "log")])
    assert names[("c2", "log")] == "git_2_log"
    clashing = [names[("c1", "git_2_status")], names[("c2", "status")]]
    assert len(set(clashing)) == 2
    assert all(name.startswith("git_2_status_") for name in clashing)


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


def test_tool_names_is_the_naming_build_view_lists_and_routes_by() -> None:
    members = (
        Member("c1", "git", tool_overrides={"log": ToolOverride(name="git_status")}),
        Member("c2", "Git", selected_tools=frozenset({"status", "git_2_diff"})),
    )
    lists = [
        UpstreamLists("c1", "o", tools=({"name": "git_status"}, {"name": "status"}, {"name": "log"}, {"name": "a b"})),
        UpstreamLists("c2", "o", tools=({"name": "status"}, {"name": "git_2_diff"}, {"name": "hidden"})),
        UpstreamLists("c3", "o", tools=({"name": "not_a_member"},)),
    ]
    now = datetime.now(UTC)
    definition = VirtualMcp("v", "o", "V", None, None, "active", members, None, now, now)
    view = build_view(definition, lists)
    named = tool_names(members, lists)
    assert named == {(route.connection_id, route.name): name for name, route in view.tool_routes.items()}
    assert named[("c1", "log")] == "git_status"  # the rename wins; both generated git_status names step aside
    assert named[("c1", "git_status")].startswith("git_status_") and named[("c1", "status")].startswith("git_status_")
    assert named[("c2", "status")] == "git_2_status"
    assert named[("c2", "git_2_diff")] == "git_2_diff"
    assert named[("c1", "a b")] == "git_a_b"
    assert ("c2", "hidden") not in named
