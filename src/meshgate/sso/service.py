"""An organization's single sign-on settings and the email domains whose people join it: owners only.

The client secret is sealed in the vault, bound to its organization, and never returned. A domain belongs to
at most one organization on the instance. Who may change what: only an owner sets up SSO or claims a domain,
since either decides who can sign in as a member of the organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.rows import utc_now
from meshgate.db.tables import organization_domains, organization_sso
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.identity.service import MemberService
from meshgate.sso.models import (
    GITHUB,
    GITHUB_ISSUER,
    GOOGLE,
    GOOGLE_ISSUER,
    MAX_DOMAINS,
    PROVIDERS,
    SsoConfig,
    check_issuer,
    clean_domain,
    clean_scopes,
)
from meshgate.vault import Vault

MAX_SECRET = 4096


def secret_context(organization_id: str) -> bytes:
    # Binding the ciphertext to its organization: a sealed value copied to another row does not open.
    return f"sso-client-secret:{organization_id}".encode()


def _owner(principal: Principal, what: str) -> None:
    if principal.role != "owner":
        raise PermissionDenied(f"only an owner can {what}")


@dataclass(frozen=True, slots=True)
class SsoChange:
    """What ORGANIZATION_SSO_SET asks for; None leaves a stored value as it is."""

    provider: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: str | None = None
    default_role: str | None = None
    sso_required: bool | None = None


class SsoSettings:
    """Reads and changes one organization's SSO configuration and domains."""

    def __init__(self, session: AsyncSession, organization_id: str, vault: Vault, *, loopback_allowed: bool) -> None:
        self._session = session
        self._org = organization_id
        self._vault = vault
        self._loopback_allowed = loopback_allowed

    async def get(self) -> SsoConfig | None:
        row = await self._row()
        return None if row is None else _config(row)

    async def client_secret(self) -> str | None:
        row = await self._row()
        if row is None or row.client_secret is None:
            return None
        return self._vault.open(row.client_secret, context=secret_context(self._org)).decode()

    async def set(self, principal: Principal, change: SsoChange) -> SsoConfig:
        _owner(principal, "set up single sign-on")
        current = await self._row()
        provider = change.provider or (current.provider if current is not None else None)
        if provider not in PROVIDERS:
            raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}")
        kept = current.issuer if current is not None and current.provider == provider else None
        issuer = change.issuer if change.issuer is not None else kept or (GOOGLE_ISSUER if provider == GOOGLE else None)
        if provider == GITHUB:  # GitHub's OAuth, not OpenID Connect: no issuer to choose
            issuer = GITHUB_ISSUER
        if not issuer:
            raise InvalidInput("issuer is required for provider oidc, e.g. https://login.example.com")
        client_id = change.client_id if change.client_id is not None else (current.client_id if current else None)
        if not client_id or not client_id.strip() or len(client_id) > 500:
            raise InvalidInput("clientId is required: the client id the identity provider gave this gateway")
        role = change.default_role or (current.default_role if current is not None else "member")
        if role == "owner":
            raise InvalidInput("defaultRole cannot be owner: people who join by SSO get at most admin")
        await MemberService(self._session, self._org).require_role(role)
        values: dict[str, Any] = {
            "provider": provider,
            "issuer": check_issuer(issuer, loopback_allowed=self._loopback_allowed),
            "client_id": client_id.strip(),
            "scopes": clean_scopes(change.scopes or (current.scopes if current is not None else None)),
            "default_role": role,
            "sso_required": change.sso_required
            if change.sso_required is not None
            else (current.sso_required if current is not None else False),
            "updated_by": principal.user_id,
            "updated_at": utc_now(),
        }
        if change.client_secret is not None:
            if len(change.client_secret) > MAX_SECRET:
                raise InvalidInput(f"clientSecret is longer than {MAX_SECRET} characters")
            secret = change.client_secret.encode()
            values["client_secret"] = self._vault.seal(secret, context=secret_context(self._org)) if secret else None
        if current is None:
            values.setdefault("client_secret", None)
            await self._session.execute(
                insert(organization_sso).values(organization_id=self._org, created_at=values["updated_at"], **values)
            )
        else:
            await self._session.execute(
                update(organization_sso).where(organization_sso.c.organization_id == self._org).values(values)
            )
        found = await self.get()
        assert found is not None  # noqa: S101  (written just above)
        return found

    async def clear(self, principal: Principal) -> None:
        _owner(principal, "turn single sign-on off")
        if await self._row() is None:
            raise NotFound("this organization has no single sign-on configured")
        await self._session.execute(delete(organization_sso).where(organization_sso.c.organization_id == self._org))

    async def domains(self) -> list[str]:
        rows = await self._session.execute(
            select(organization_domains.c.domain)
            .where(organization_domains.c.organization_id == self._org)
            .order_by(organization_domains.c.domain)
        )
        return [row.domain for row in rows]

    async def set_domains(self, principal: Principal, wanted: list[str]) -> list[str]:
        """Replace the organization's domains; a domain another organization has is refused."""
        _owner(principal, "choose the email domains that join the organization")
        domains = sorted({clean_domain(value) for value in wanted})
        if not domains:
            raise InvalidInput("give at least one domain; ORGANIZATION_DOMAIN_CLEAR removes them all")
        if len(domains) > MAX_DOMAINS:
            raise InvalidInput(f"an organization has at most {MAX_DOMAINS} domains")
        taken = await self._session.scalar(
            select(organization_domains.c.domain).where(
                organization_domains.c.domain.in_(domains), organization_domains.c.organization_id != self._org
            )
        )
        if taken is not None:
            raise Conflict(f"the domain {taken} belongs to another organization on this gateway")
        await self._session.execute(
            delete(organization_domains).where(organization_domains.c.organization_id == self._org)
        )
        now = utc_now()
        await self._session.execute(
            insert(organization_domains),
            [
                {"domain": domain, "organization_id": self._org, "created_by": principal.user_id, "created_at": now}
                for domain in domains
            ],
        )
        return domains

    async def clear_domains(self, principal: Principal) -> None:
        _owner(principal, "remove the organization's email domains")
        await self._session.execute(
            delete(organization_domains).where(organization_domains.c.organization_id == self._org)
        )

    async def _row(self) -> Row[Any] | None:
        query = select(organization_sso).where(organization_sso.c.organization_id == self._org)
        return (await self._session.execute(query)).first()


def _config(row: Row[Any]) -> SsoConfig:
    return SsoConfig(
        organization_id=row.organization_id,
        provider=row.provider,
        issuer=row.issuer,
        client_id=row.client_id,
        has_client_secret=row.client_secret is not None,
        scopes=row.scopes,
        default_role=row.default_role,
        sso_required=bool(row.sso_required),
        updated_at=row.updated_at,
    )
