"""Input models of the virtual MCP tools."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from meshgate.mcp.registry import ToolInput
from meshgate.virtual.models import TOOL_NAME_PATTERN

MAX_MEMBERS = 100
MAX_SELECTED = 2000


class ToolOverrideInput(ToolInput):
    name: str | None = Field(
        None,
        description="Name shown to clients instead of <connection>_<tool>: [A-Za-z0-9_.-], 1-64 characters",
        pattern=TOOL_NAME_PATTERN,
    )
    description: str | None = Field(None, description="Description shown instead of the server's", max_length=10_000)


class MemberInput(ToolInput):
    connection_id: str = Field(description="A connection of this organization", min_length=1, max_length=36)
    selected_tools: list[str] | None = Field(
        None, description="Tools to expose (upstream names); absent = all", max_length=MAX_SELECTED
    )
    selected_resources: list[str] | None = Field(
        None, description="Resource URIs (and template URIs) to expose; absent = all", max_length=MAX_SELECTED
    )
    selected_prompts: list[str] | None = Field(
        None, description="Prompts to expose (upstream names); absent = all", max_length=MAX_SELECTED
    )
    tool_overrides: dict[str, ToolOverrideInput] | None = Field(
        None, description="Per upstream tool name: {name?, description?} to rename it or replace its description"
    )


class VirtualDataInput(ToolInput):
    """Fields of a virtual MCP; all optional so the same model serves create (checked further) and update."""

    title: str | None = Field(None, description="Display name, 1-200 characters", min_length=1, max_length=200)
    description: str | None = Field(None, description="Free text, at most 2000 characters", max_length=2000)
    instructions: str | None = Field(
        None, description="Instructions for clients, put before those of the servers", max_length=20_000
    )
    status: Literal["active", "inactive"] | None = Field(None, description="inactive virtual MCPs refuse calls")
    connections: list[MemberInput] | None = Field(
        None,
        description=f"The connections behind this endpoint, in order (at most {MAX_MEMBERS})",
        max_length=MAX_MEMBERS,
    )

    @model_validator(mode="after")
    def _distinct(self) -> VirtualDataInput:
        seen: set[str] = set()
        renamed: set[str] = set()
        for member in self.connections or []:
            if member.connection_id in seen:
                raise ValueError(f"connection {member.connection_id} is listed twice")
            seen.add(member.connection_id)
            for override in (member.tool_overrides or {}).values():
                if override.name is not None:
                    if override.name in renamed:
                        raise ValueError(f"two tools are renamed to {override.name!r}")
                    renamed.add(override.name)
        return self


class CreateInput(ToolInput):
    data: VirtualDataInput = Field(description="{title, description?, instructions?, status?, connections: [...]}")


class UpdateInput(ToolInput):
    id: str = Field(description="Virtual MCP id", max_length=36)
    data: VirtualDataInput = Field(description="Fields to change; connections, when given, replace the list")


class IdInput(ToolInput):
    id: str = Field(description="Virtual MCP id", max_length=36)


class ListInput(ToolInput):
    limit: int = Field(100, description="Page size, 1-1000", ge=1, le=1000)
    offset: int = Field(0, description="Items to skip", ge=0)
