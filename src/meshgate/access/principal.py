"""The authenticated caller of a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meshgate.access.permissions import SELF, WILDCARD, PermissionMap, covers, map_allows

# Management tools an OAuth access token may call only when its scope names them: an API key minted
# through a client's token would otherwise be a way out of the grant (security review 26).
NAMED_SCOPE_ONLY = frozenset({"API_KEY_CREATE"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, in which organization, and every permission map that must agree.

    `grants` holds the owner's current role map and, for an API key or token, the key's own map
    (`grants[1]`): a tool is allowed only when every map allows it (the intersection rule).

    A connection acting for itself (its connection credential) has `connection_id` set, no user behind it
    (`user_id` is the connection's id, `role` is "connection") and only the event tools in its grant.
    """

    user_id: str
    organization_id: str
    organization_slug: str
    role: str
    grants: tuple[PermissionMap, ...]
    api_key_id: str | None = None
    expires_at: datetime | None = None
    grant_id: str | None = None  # OAuth grant behind an access token
    client_id: str | None = None  # the OAuth client that grant was given to
    audience: str | None = None  # the one MCP endpoint URL an access token is for (RFC 8707); None for API keys
    connection_id: str | None = None  # the connection this principal is, when a connection acts for itself

    @property
    def credential_id(self) -> str | None:
        """The API key or OAuth grant this request came with (rate limits count per credential)."""
        return self.api_key_id or self.grant_id or self.connection_id

    @property
    def caller(self) -> str:
        """Whom upstream sessions and open interactions belong to: the API key or OAuth grant, else the user
        (a browser session acts with the user's own role)."""
        return self.api_key_id or self.grant_id or self.user_id

    def allows(self, resource: str, tool: str) -> bool:
        """Whether this caller may use `tool` on `resource` now."""
        if self.grant_id is not None and resource == SELF and tool in NAMED_SCOPE_ONLY and not self._names(tool):
            return False
        return all(map_allows(grant, resource, tool) for grant in self.grants)

    def _names(self, tool: str) -> bool:
        """Whether the credential's own map lists `tool` by name (a wildcard does not count)."""
        own: PermissionMap = self.grants[1] if len(self.grants) > 1 else {}
        return any(tool in own.get(key, ()) for key in (SELF, WILDCARD))

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")

    def can_reach(self, resource: str) -> bool:
        """Whether every grant gives at least one tool on `resource` (needed for anything but tools/call)."""
        return all(any(grant.get(key) for key in (resource, "*")) for grant in self.grants)

    def covers(self, wanted: PermissionMap) -> bool:
        """Whether this caller already holds everything in `wanted` (no one grants more than they have)."""
        return all(covers(grant, wanted) for grant in self.grants)


CONNECTION_ROLE = "connection"
# What a connection's own credential may do: the event bus's tools on the management MCP, for itself only
# (the tools narrow each call to the connection; see `meshgate.events`). No redelivering, no webhooks.
CONNECTION_TOOLS = (
    "EVENT_PUBLISH",
    "EVENT_SUBSCRIBE",
    "EVENT_UNSUBSCRIBE",
    "EVENT_SUBSCRIPTION_LIST",
    "EVENT_SYNC_SUBSCRIPTIONS",
    "EVENT_CANCEL",
    "EVENT_ACK",
    "EVENT_LIST",
    "EVENT_GET",
)


def connection_principal(
    connection_id: str, organization_id: str, organization_slug: str, expires_at: datetime | None = None
) -> Principal:
    """A connection acting for itself in its own organization, allowed the event tools only."""
    return Principal(
        user_id=connection_id,
        organization_id=organization_id,
        organization_slug=organization_slug,
        role=CONNECTION_ROLE,
        grants=({"self": CONNECTION_TOOLS},),
        expires_at=expires_at,
        connection_id=connection_id,
    )
