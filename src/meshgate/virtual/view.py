"""The merged lists of one virtual MCP and where each name and URI is routed.

Built from the definition and the catalog's lists; rebuilt only when one of those changes, so a call
through a virtual MCP finds its route in a dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshgate.protocol import readable_tool_name
from meshgate.virtual.catalog import UpstreamLists
from meshgate.virtual.models import Member, VirtualMcp
from meshgate.virtual.names import exposed_names, slugs

_TEMPLATE_VARIABLE = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed tool or prompt goes: the connection and the name the upstream knows."""

    connection_id: str
    name: str


@dataclass(frozen=True, slots=True)
class VirtualView:
    tools: tuple[dict[str, Any], ...]
    tool_routes: dict[str, Route]
    prompts: tuple[dict[str, Any], ...]
    prompt_routes: dict[str, Route]
    resources: tuple[dict[str, Any], ...]
    resource_owners: dict[str, str]
    templates: tuple[dict[str, Any], ...]
    template_owners: tuple[tuple[re.Pattern[str], str], ...]
    instructions: str | None
    left_out: tuple[tuple[str, str], ...]  # (connection title, reason)
    titles: dict[str, str]  # connection id → title, for search and messages

    def resource_owner(self, uri: str) -> str | None:
        """The connection that serves a resource URI: a listed resource, else the first matching template."""
        owner = self.resource_owners.get(uri)
        if owner is not None:
            return owner
        for pattern, connection_id in self.template_owners:
            if pattern.fullmatch(uri):
                return connection_id
        return None

    def same_tools(self, other: VirtualView | None) -> bool:
        return other is not None and self.tools == other.tools

    def same_prompts(self, other: VirtualView | None) -> bool:
        return other is not None and self.prompts == other.prompts

    def same_resources(self, other: VirtualView | None) -> bool:
        return other is not None and (self.resources, self.templates) == (other.resources, other.templates)


def build_view(definition: VirtualMcp, lists: Sequence[UpstreamLists]) -> VirtualView:
    """Merge the members' lists in member order, applying selections, renames and overrides."""
    members = {member.connection_id: member for member in definition.members}
    prefixes = slugs((member.connection_id, member.connection_title) for member in definition.members)
    usable = [entry for entry in lists if entry.error is None and entry.connection_id in members]
    tools, tool_routes = _tools(usable, members, prefixes)
    prompts, prompt_routes = _prompts(usable, members, prefixes)
    resources: list[dict[str, Any]] = []
    owners: dict[str, str] = {}
    templates: list[dict[str, Any]] = []
    template_owners: list[tuple[re.Pattern[str], str]] = []
    for entry in usable:
        chosen = members[entry.connection_id].selected_resources
        for resource in entry.resources:
            uri = str(resource.get("uri", ""))
            if uri and uri not in owners and (chosen is None or uri in chosen):
                owners[uri] = entry.connection_id
                resources.append(resource)
        for template in entry.templates:
            pattern = str(template.get("uriTemplate", ""))
            if pattern and (chosen is None or pattern in chosen):
                templates.append(template)
                template_owners.append((_template_pattern(pattern), entry.connection_id))
    titles = {member.connection_id: member.connection_title for member in definition.members}
    left_out = tuple((titles[entry.connection_id], entry.error or "") for entry in lists if entry.error is not None)
    return VirtualView(
        tools=tuple(tools),
        tool_routes=tool_routes,
        prompts=tuple(prompts),
        prompt_routes=prompt_routes,
        resources=tuple(resources),
        resource_owners=owners,
        templates=tuple(templates),
        template_owners=tuple(template_owners),
        instructions=_instructions(definition, usable, titles),
        left_out=left_out,
        titles=titles,
    )


def tool_names(members: Sequence[Member], lists: Sequence[UpstreamLists]) -> dict[tuple[str, str], str]:
    """(connection id, upstream tool name) → the name clients see, for the tools the members expose.

    The one naming of a virtual MCP's tools: `build_view` lists and routes by it, and the dashboard's form
    previews with it (over the tools it shows), so the preview is what clients will list.
    """
    by_id = {member.connection_id: member for member in members}
    prefixes = slugs((member.connection_id, member.connection_title) for member in members)
    usable = [entry for entry in lists if entry.error is None and entry.connection_id in by_id]
    return _named(_chosen_tools(usable, by_id), by_id, prefixes)


def _chosen_tools(usable: Sequence[UpstreamLists], members: dict[str, Member]) -> list[tuple[str, dict[str, Any]]]:
    chosen: list[tuple[str, dict[str, Any]]] = []
    for entry in usable:
        member = members[entry.connection_id]
        for tool in entry.tools:
            name = str(tool.get("name", ""))
            if not readable_tool_name(name):
                continue  # security review 18: a name that can be misread is never offered
            if member.selected_tools is not None and name not in member.selected_tools:
                continue
            chosen.append((entry.connection_id, tool))
    return chosen


def _named(
    chosen: Sequence[tuple[str, dict[str, Any]]], members: dict[str, Member], prefixes: dict[str, str]
) -> dict[tuple[str, str], str]:
    fixed: dict[tuple[str, str], str] = {}
    for connection_id, tool in chosen:
        override = (members[connection_id].tool_overrides or {}).get(str(tool["name"]))
        if override is not None and override.name:
            fixed[(connection_id, str(tool["name"]))] = override.name
    return exposed_names(
        ((connection_id, prefixes[connection_id], str(tool["name"])) for connection_id, tool in chosen), fixed
    )


def _tools(
    usable: Sequence[UpstreamLists], members: dict[str, Member], prefixes: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Route]]:
    chosen = _chosen_tools(usable, members)
    names = _named(chosen, members, prefixes)
    exposed: list[dict[str, Any]] = []
    routes: dict[str, Route] = {}
    for connection_id, tool in chosen:
        upstream_name = str(tool["name"])
        name = names[(connection_id, upstream_name)]
        shown = {**tool, "name": name}
        override = (members[connection_id].tool_overrides or {}).get(upstream_name)
        if override is not None and override.description:
            shown["description"] = override.description
        exposed.append(shown)
        routes[name] = Route(connection_id, upstream_name)
    return exposed, routes


def _prompts(
    usable: Sequence[UpstreamLists], members: dict[str, Member], prefixes: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Route]]:
    chosen = [
        (entry.connection_id, prompt)
        for entry in usable
        for prompt in entry.prompts
        if prompt.get("name")
        and (
            members[entry.connection_id].selected_prompts is None
            or prompt["name"] in (members[entry.connection_id].selected_prompts or ())
        )
    ]
    names = exposed_names((connection_id, prefixes[connection_id], str(p["name"])) for connection_id, p in chosen)
    exposed: list[dict[str, Any]] = []
    routes: dict[str, Route] = {}
    for connection_id, prompt in chosen:
        name = names[(connection_id, str(prompt["name"]))]
        exposed.append({**prompt, "name": name})
        routes[name] = Route(connection_id, str(prompt["name"]))
    return exposed, routes


def _instructions(definition: VirtualMcp, usable: Sequence[UpstreamLists], titles: dict[str, str]) -> str | None:
    parts = [definition.instructions.strip()] if definition.instructions and definition.instructions.strip() else []
    parts.extend(
        f"## {titles[entry.connection_id]}\n{entry.instructions.strip()}"
        for entry in usable
        if entry.instructions and entry.instructions.strip()
    )
    return "\n\n".join(parts) or None


def _template_pattern(template: str) -> re.Pattern[str]:
    """A URI template (RFC 6570, simple expansion) as a regular expression: each variable matches text without `/`."""
    pieces = _TEMPLATE_VARIABLE.split(template)
    return re.compile("[^/]+".join(re.escape(piece) for piece in pieces))
