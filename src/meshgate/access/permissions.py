"""Permission maps: `{resource: [tool | "*"]}` where resource is "self", a connection id,
a virtual MCP id, or "*"."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from meshgate.errors import InvalidInput

PermissionMap = Mapping[str, Sequence[str]]

SELF = "self"
WILDCARD = "*"
FULL_ACCESS: PermissionMap = {WILDCARD: (WILDCARD,)}

MAX_RESOURCES = 1000
MAX_TOOLS_PER_RESOURCE = 1000
_NAME = re.compile(r"^[A-Za-z0-9_.:/\-*]{1,200}$")


def map_allows(permissions: PermissionMap, resource: str, tool: str) -> bool:
    """Whether one map grants `tool` on `resource`."""
    for key in (resource, WILDCARD):
        tools = permissions.get(key)
        if tools is not None and (WILDCARD in tools or tool in tools):
            return True
    return False


def covers(holder: PermissionMap, wanted: PermissionMap) -> bool:
    """Whether `holder` grants everything `wanted` grants (a wildcard is only covered by a wildcard)."""
    return all(map_allows(holder, resource, tool) for resource, tools in wanted.items() for tool in tools)


def parse_permission_map(value: Any, *, field: str = "permissions") -> dict[str, list[str]]:
    """Validate user input into a permission map, with a message that says what is allowed."""
    if not isinstance(value, dict):
        raise InvalidInput(
            f'{field} must be an object like {{"self": ["ORGANIZATION_LIST"], "<connection id>": ["*"]}}'
        )
    items: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    if len(items) > MAX_RESOURCES:
        raise InvalidInput(f"{field} has {len(items)} resources; at most {MAX_RESOURCES} are allowed")
    parsed: dict[str, list[str]] = {}
    for resource, tools in items.items():
        if not _NAME.match(resource):
            raise InvalidInput(f"{field}: resource {resource[:80]!r} is not a valid resource name")
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):  # pyright: ignore[reportUnknownVariableType]
            raise InvalidInput(f'{field}[{resource!r}] must be a list of tool names or ["*"]')
        names: list[str] = tools  # pyright: ignore[reportUnknownVariableType]
        if len(names) > MAX_TOOLS_PER_RESOURCE:
            raise InvalidInput(f"{field}[{resource!r}] lists {len(names)} tools; at most {MAX_TOOLS_PER_RESOURCE}")
        for name in names:
            if not _NAME.match(name):
                raise InvalidInput(f"{field}[{resource!r}]: {name[:80]!r} is not a valid tool name")
        parsed[resource] = sorted(set(names))
    return parsed
