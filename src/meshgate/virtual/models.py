"""Virtual MCP values: the stored definition and what reads return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.access import Principal

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ToolOverride:
    """A selected tool shown under another name and/or with another description."""

    name: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in (("name", self.name), ("description", self.description)) if value}


@dataclass(frozen=True, slots=True)
class Member:
    """One connection of a virtual MCP and what of it is exposed (None = everything)."""

    connection_id: str
    connection_title: str
    selected_tools: frozenset[str] | None = None
    selected_resources: frozenset[str] | None = None
    selected_prompts: frozenset[str] | None = None
    tool_overrides: Mapping[str, ToolOverride] | None = None

    def to_dict(self) -> dict[str, Any]:
        def listed(values: frozenset[str] | None) -> list[str] | None:
            return None if values is None else sorted(values)

        return {
            "connection_id": self.connection_id,
            "connection_title": self.connection_title,
            "selected_tools": listed(self.selected_tools),
            "selected_resources": listed(self.selected_resources),
            "selected_prompts": listed(self.selected_prompts),
            "tool_overrides": None
            if self.tool_overrides is None
            else {tool: override.to_dict() for tool, override in self.tool_overrides.items()},
        }


@dataclass(frozen=True, slots=True)
class VirtualMcp:
    id: str
    organization_id: str
    title: str
    description: str | None
    instructions: str | None
    status: str
    members: tuple[Member, ...]
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    def admits(self, principal: Principal) -> bool:
        """Whether the principal may enter: it reaches the virtual MCP itself or one of its connections."""
        return principal.can_reach(self.id) or any(principal.can_reach(member.connection_id) for member in self.members)

    def to_dict(self, public_url: str = "") -> dict[str, Any]:
        return {
            "id": self.id,
            "organization_id": self.organization_id,
            "title": self.title,
            "description": self.description,
            "instructions": self.instructions,
            "status": self.status,
            "connections": [member.to_dict() for member in self.members],
            "url": f"{public_url}/mcp/virtual/{self.id}",
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
