"""The OAuth clients a person has authorized in an organization, and taking that authorization back.

An app is listed while one of its grants (for this person, in this organization) is not revoked and holds a
live refresh token. Revoking an app revokes all those grants: refresh tokens stop at once, and so do access
tokens, because revocation is an identity change that drops every cached principal (the grant is read again,
once per token, on its next use; no query per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.database import announce_change
from meshgate.db.tables import api_keys, oauth_clients, oauth_grants, oauth_refresh_tokens
from meshgate.errors import NotFound
from meshgate.identity.service import IDENTITY
from meshgate.oauth.clients import redirect_host
from meshgate.oauth.consent import ConsentTargets


async def revoke_grants(session: AsyncSession, grant_ids: Sequence[str], when: datetime) -> None:
    """Revoke the grants; the API keys their tokens created go with them (security review 26)."""
    if not grant_ids:
        return
    await session.execute(
        update(oauth_grants)
        .where(oauth_grants.c.id.in_(grant_ids), oauth_grants.c.revoked_at.is_(None))
        .values(revoked_at=when)
    )
    await session.execute(delete(api_keys).where(api_keys.c.grant_id.in_(grant_ids)))
    await announce_change(session, IDENTITY)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AuthorizedApp:
    """One OAuth client holding access for the person: what it reaches and since when."""

    client_id: str
    name: str
    verified: bool  # an admin registered it, or its metadata document's host vouches for it
    redirect_hosts: tuple[str, ...]
    resources: tuple[str, ...]  # names of the endpoints its grants are for
    granted_at: datetime  # its oldest live grant
    last_issued_at: datetime | None  # tokens last issued (code exchange or refresh)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "name": self.name,
            "verified": self.verified,
            "redirectHosts": list(self.redirect_hosts),
            "resources": list(self.resources),
            "grantedAt": _iso(self.granted_at),
            "lastIssuedAt": _iso(self.last_issued_at),
        }


class AuthorizedApps:
    """The principal's own OAuth grants in its organization (admins too see only their own: consent is personal)."""

    def __init__(self, session: AsyncSession, principal: Principal, targets: ConsentTargets, now: datetime) -> None:
        self._session = session
        self._principal = principal
        self._targets = targets
        self._now = now

    async def list(self) -> list[AuthorizedApp]:
        live_refresh = (
            select(
                oauth_refresh_tokens.c.grant_id,
                func.max(oauth_refresh_tokens.c.created_at).label("last_issued_at"),
            )
            .where(oauth_refresh_tokens.c.used_at.is_(None), oauth_refresh_tokens.c.expires_at > self._now)
            .group_by(oauth_refresh_tokens.c.grant_id)
            .subquery()
        )
        rows = (
            await self._session.execute(
                select(
                    oauth_grants.c.client_id,
                    oauth_grants.c.resource,
                    oauth_grants.c.created_at,
                    live_refresh.c.last_issued_at,
                    oauth_clients.c.name,
                    oauth_clients.c.kind,
                    oauth_clients.c.redirect_uris,
                )
                .join(live_refresh, live_refresh.c.grant_id == oauth_grants.c.id)
                .outerjoin(oauth_clients, oauth_clients.c.client_id == oauth_grants.c.client_id)
                .where(*self._mine())
                .order_by(oauth_grants.c.created_at, oauth_grants.c.id)
            )
        ).all()
        by_client: dict[str, list[Any]] = {}
        for row in rows:
            by_client.setdefault(row.client_id, []).append(row)
        return [await self._app(client_id, grants) for client_id, grants in by_client.items()]

    async def revoke(self, client_id: str) -> int:
        """Revoke every grant of this client for the principal in its organization; how many there were."""
        query = select(oauth_grants.c.id).where(*self._mine(), oauth_grants.c.client_id == client_id)
        grant_ids = list((await self._session.scalars(query)).all())
        if not grant_ids:
            raise NotFound(f"no app {client_id[:200]} holds access for you in this organization")
        await revoke_grants(self._session, grant_ids, self._now)
        return len(grant_ids)

    def _mine(self) -> tuple[Any, ...]:
        return (
            oauth_grants.c.user_id == self._principal.user_id,
            oauth_grants.c.organization_id == self._principal.organization_id,
            oauth_grants.c.revoked_at.is_(None),
        )

    async def _app(self, client_id: str, grants: list[Any]) -> AuthorizedApp:
        first = grants[0]
        if first.kind is None:
            # A client ID metadata document (an https URL) is not stored; its host is what vouches for it.
            name, verified, hosts = redirect_host(client_id), True, (redirect_host(client_id),)
        else:
            name, verified = str(first.name), first.kind != "dynamic"
            hosts = tuple(dict.fromkeys(redirect_host(str(uri)) for uri in first.redirect_uris or ()))
        resources = [
            await self._targets.name_in(self._principal.organization_id, str(grant.resource)) for grant in grants
        ]
        issued = [grant.last_issued_at for grant in grants if grant.last_issued_at is not None]
        return AuthorizedApp(
            client_id=client_id,
            name=name,
            verified=verified,
            redirect_hosts=hosts,
            resources=tuple(dict.fromkeys(resources)),
            granted_at=min(grant.created_at for grant in grants),
            last_issued_at=max(issued) if issued else None,
        )
