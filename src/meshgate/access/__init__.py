"""Access control: principals and permission decisions, pure functions over in-memory data."""

from meshgate.access.permissions import (
    FULL_ACCESS,
    SELF,
    WILDCARD,
    PermissionMap,
    covers,
    map_allows,
    parse_permission_map,
)
from meshgate.access.principal import CONNECTION_ROLE, CONNECTION_TOOLS, Principal, connection_principal

__all__ = [
    "CONNECTION_ROLE",
    "CONNECTION_TOOLS",
    "FULL_ACCESS",
    "SELF",
    "WILDCARD",
    "PermissionMap",
    "Principal",
    "connection_principal",
    "covers",
    "map_allows",
    "parse_permission_map",
]
