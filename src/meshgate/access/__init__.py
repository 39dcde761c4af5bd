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
from meshgate.access.principal import Principal

__all__ = [
    "FULL_ACCESS",
    "SELF",
    "WILDCARD",
    "PermissionMap",
    "Principal",
    "covers",
    "map_allows",
    "parse_permission_map",
]
