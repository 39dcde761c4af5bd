"""The permission picker: resources (meshgate itself, each connection, everything) and their tools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshgate.access import SELF, WILDCARD
from meshgate.jsonvalues import as_dict, as_list
from meshgate.mcp.registry import ToolRegistry


@dataclass(frozen=True, slots=True)
class PickerRow:
    id: str
    label: str
    tools: tuple[str, ...]
    note: str = ""


def picker_rows(registry: ToolRegistry, connections: Sequence[Mapping[str, Any]]) -> list[PickerRow]:
    rows = [PickerRow(WILDCARD, "Everything", (), "Every tool of meshgate and of every connection, now and later.")]
    rows.append(PickerRow(SELF, "meshgate management", tuple(sorted(spec.name for spec in registry))))
    for connection in connections:
        names = tuple(str(as_dict(tool).get("name")) for tool in as_list(connection.get("tools")))
        rows.append(PickerRow(str(connection["id"]), f"Connection: {connection['title']}", names))
    return rows


def map_from_form(form: Mapping[str, list[str]], name: str = "perm") -> dict[str, list[str]]:
    """`resource|tool` checkbox values as a permission map (validated by the tool that receives it)."""
    chosen: dict[str, list[str]] = {}
    for value in form.get(name, []):
        resource, _, tool = value.partition("|")
        if resource and tool:
            chosen.setdefault(resource, []).append(tool)
    return chosen


def checked(permissions: Mapping[str, Sequence[str]] | None) -> set[str]:
    """The checkbox values a stored map ticks."""
    return {f"{resource}|{tool}" for resource, tools in (permissions or {}).items() for tool in tools}


def describe(permissions: Mapping[str, Sequence[str]] | None, names: Mapping[str, str]) -> str:
    """One line for a table: "role's permissions", or resources with their tool counts."""
    if permissions is None:
        return "Same as the owner's role"
    if not permissions:
        return "Nothing"
    parts: list[str] = []
    for resource, tools in permissions.items():
        label = {WILDCARD: "everything", SELF: "management"}.get(resource, names.get(resource, resource[:8]))
        parts.append(
            f"{label}: {'all tools' if WILDCARD in tools else f'{len(tools)} tool' + ('' if len(tools) == 1 else 's')}"
        )
    return "; ".join(parts)
