"""What a consent page offers: the MCP endpoint being authorized, by name, and the organizations it may be
granted in.

A connection or virtual MCP belongs to one organization, so its consent offers that one, and only to a member
of it whose role reaches it (a token that every call would refuse is not worth a consent). An id that no
organization of the person holds answers "not found" whether it exists elsewhere or not: nothing crosses
organizations. `/mcp` (management) may be granted in any organization of the person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access.principal import Principal
from meshgate.connections.service import ConnectionService
from meshgate.errors import NotFound, OAuthError, PermissionDenied
from meshgate.identity.models import Organization
from meshgate.identity.service import OrganizationService, member_principal
from meshgate.oauth import metadata
from meshgate.vault import Vault
from meshgate.virtual.service import VirtualMcpService

MANAGEMENT = "management"
CONNECTION = "connection"
VIRTUAL = "virtual"
MANAGEMENT_NAME = "meshgate management"


@dataclass(frozen=True, slots=True)
class ConsentTarget:
    """The endpoint a client asks for: its kind, a name a person recognises, and where it may be granted."""

    resource: str  # the RFC 8707 resource indicator, as asked
    kind: str  # management | connection | virtual
    name: str
    organizations: tuple[Organization, ...]

    def organization(self, organization_id: str | None) -> Organization:
        """The offered organization with this id; anything else (a forged form field) is refused."""
        for organization in self.organizations:
            if organization.id == organization_id:
                return organization
        if self.kind == MANAGEMENT:
            raise PermissionDenied("pick one of your organizations")
        raise PermissionDenied(f"{self.name} can only be authorized in its organization, {self.organizations[0].name}")


class ConsentTargets:
    """Looks up the endpoint behind a resource indicator through the connection and virtual MCP services."""

    def __init__(self, session: AsyncSession, vault: Vault, public_url: str) -> None:
        self._session = session
        self._vault = vault
        self._public_url = public_url

    async def find(self, user_id: str, resource: str) -> ConsentTarget:
        """The target for this person; `NotFound` for an id none of their organizations holds."""
        path = metadata.resource_of(self._public_url, resource)
        if path is None:
            raise OAuthError("invalid_target", f"{resource[:200]} is not an MCP endpoint of {self._public_url}")
        organizations = await OrganizationService(self._session).list_for_user(user_id)
        if not organizations:
            raise PermissionDenied("you are not a member of any organization yet; ask an admin to add you")
        if path == "/mcp":
            return ConsentTarget(resource, MANAGEMENT, MANAGEMENT_NAME, tuple(organizations))
        if path.startswith("/mcp/virtual/"):
            return await self._virtual(user_id, resource, path.removeprefix("/mcp/virtual/"), organizations)
        return await self._connection(user_id, resource, path.removeprefix("/mcp/"), organizations)

    async def _connection(
        self, user_id: str, resource: str, connection_id: str, organizations: list[Organization]
    ) -> ConsentTarget:
        async def find(organization: Organization) -> tuple[str, Callable[[Principal], bool]]:
            connection = await ConnectionService(self._session, organization.id, self._vault).get(connection_id)
            return connection.title, lambda principal: principal.can_reach(connection_id)

        missing = (
            f"there is no connection {connection_id} in your organizations; check the address your client uses, "
            "or ask an admin of the connection's organization to add you"
        )
        return await self._owned(user_id, resource, organizations, find, (CONNECTION, "this connection", missing))

    async def _virtual(
        self, user_id: str, resource: str, virtual_id: str, organizations: list[Organization]
    ) -> ConsentTarget:
        async def find(organization: Organization) -> tuple[str, Callable[[Principal], bool]]:
            virtual = await VirtualMcpService(self._session, organization.id).get(virtual_id)
            return virtual.title, virtual.admits

        missing = (
            f"there is no virtual MCP {virtual_id} in your organizations; check the address your client uses, "
            "or ask an admin of its organization to add you"
        )
        return await self._owned(user_id, resource, organizations, find, (VIRTUAL, "this virtual MCP", missing))

    async def _owned(
        self,
        user_id: str,
        resource: str,
        organizations: list[Organization],
        find: Callable[[Organization], Awaitable[tuple[str, Callable[[Principal], bool]]]],
        described: tuple[str, str, str],
    ) -> ConsentTarget:
        """The organization (of the user's) that holds the resource, if the user may reach it there.
        `described`: the target's kind, how a refusal names it, and the answer when no organization holds it."""
        kind, named, missing = described
        for organization in organizations:
            try:
                title, admits = await find(organization)
            except NotFound:
                continue
            principal = await member_principal(self._session, user_id, organization.slug)
            if not admits(principal):
                raise _unreachable(organization, named)
            return ConsentTarget(resource, kind, title, (organization,))
        raise NotFound(missing)

    async def name_in(self, organization_id: str, resource: str) -> str:
        """What a granted resource is called now in its organization (for the list of authorized apps)."""
        path = metadata.resource_of(self._public_url, resource)
        if path is None:
            return resource
        if path == "/mcp":
            return MANAGEMENT_NAME
        try:
            if path.startswith("/mcp/virtual/"):
                virtual_id = path.removeprefix("/mcp/virtual/")
                return "virtual MCP " + (await VirtualMcpService(self._session, organization_id).get(virtual_id)).title
            connection_id = path.removeprefix("/mcp/")
            service = ConnectionService(self._session, organization_id, self._vault)
            return "connection " + (await service.get(connection_id)).title
        except NotFound:
            return f"{resource} (deleted)"


def _unreachable(organization: Organization, what: str) -> PermissionDenied:
    # The title is not repeated: a role that reaches nothing there need not learn what it is called.
    return PermissionDenied(
        f"your role in {organization.name} gives you no access to {what}; ask an admin of {organization.name}"
    )
