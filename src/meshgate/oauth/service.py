"""Authorization codes, grants, token issuance, refresh-token rotation and revocation.

A grant is one user's consent for one client, organization and resource. Its authorization code is
single-use; its refresh tokens rotate on every use, and presenting a used one (a sign that it was
stolen) revokes the whole grant. Revoking a grant is announced as an identity change, so every
process drops the principals it cached for the grant's access tokens.

Methods that must persist a revocation and still refuse the request return the `OAuthError` instead of
raising it, so that the caller's transaction commits the revocation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import PermissionMap, Principal
from meshgate.db.database import rows_changed
from meshgate.db.rows import new_id
from meshgate.db.tables import oauth_codes, oauth_grants, oauth_refresh_tokens
from meshgate.errors import OAuthError
from meshgate.identity.service import hash_key
from meshgate.oauth.access_tokens import AccessTokens
from meshgate.oauth.clients import OAuthClient
from meshgate.oauth.consent import ConsentTarget, ConsentTargets
from meshgate.oauth.grants import AuthorizedApps, revoke_grants
from meshgate.oauth.scopes import is_narrower
from meshgate.vault import Vault

CODE_SECONDS = 300
_KEEP_USED = timedelta(days=1)
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True, slots=True)
class Authorization:
    """What a user allowed on the consent page."""

    client_id: str
    user_id: str
    organization_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scope: str | None
    permissions: PermissionMap | None


def pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return hmac.compare_digest(base64.urlsafe_b64encode(digest).decode().rstrip("="), challenge)


class AuthorizationService:
    def __init__(self, session: AsyncSession, tokens: AccessTokens, refresh_lifetime_s: int, vault: Vault) -> None:
        self._session = session
        self._tokens = tokens
        self._refresh_lifetime = timedelta(seconds=refresh_lifetime_s)
        self._targets = ConsentTargets(session, vault, tokens.issuer)

    def _now(self) -> datetime:
        """Codes, refresh tokens and access tokens all read the access tokens' clock."""
        return datetime.fromtimestamp(self._tokens.clock(), UTC)

    async def consent_target(self, user_id: str, resource: str) -> ConsentTarget:
        """What the consent page names and the organizations it offers (`NotFound` for an unknown endpoint)."""
        return await self._targets.find(user_id, resource)

    async def issue_code(self, authorization: Authorization) -> str:
        """Record the consent and return its code; the organization must be one the consent could offer."""
        target = await self._targets.find(authorization.user_id, authorization.resource)
        target.organization(authorization.organization_id)
        grant_id = new_id()
        now = self._now()
        await self._session.execute(
            oauth_grants.insert().values(
                id=grant_id,
                client_id=authorization.client_id,
                user_id=authorization.user_id,
                organization_id=authorization.organization_id,
                resource=authorization.resource,
                scope=authorization.scope,
                permissions=None if authorization.permissions is None else dict(authorization.permissions),
                created_at=now,
            )
        )
        code = "mgac_" + secrets.token_urlsafe(32)
        await self._session.execute(
            oauth_codes.insert().values(
                code_hash=hash_key(code),
                grant_id=grant_id,
                redirect_uri=authorization.redirect_uri,
                code_challenge=authorization.code_challenge,
                expires_at=now + timedelta(seconds=CODE_SECONDS),
            )
        )
        return code

    async def exchange_code(  # noqa: PLR0911  (one early answer per RFC 6749 check reads clearest)
        self,
        client: OAuthClient,
        code: str | None,
        redirect_uri: str | None,
        verifier: str | None,
        resource: str | None,
    ) -> dict[str, Any] | OAuthError:
        if not code:
            return OAuthError("invalid_request", "code is required")
        if not verifier:
            return OAuthError("invalid_request", "code_verifier is required (PKCE with S256)")
        digest = hash_key(code)
        row = (
            await self._session.execute(
                select(oauth_codes, oauth_grants.c.client_id, oauth_grants.c.resource)
                .join(oauth_grants, oauth_grants.c.id == oauth_codes.c.grant_id)
                .where(oauth_codes.c.code_hash == digest)
            )
        ).first()
        if row is None or row.client_id != client.client_id:
            return OAuthError("invalid_grant", "the authorization code is not valid")
        now = self._now()
        claimed = await self._session.execute(
            update(oauth_codes)
            .where(oauth_codes.c.code_hash == digest, oauth_codes.c.used_at.is_(None))
            .values(used_at=now)
        )
        if rows_changed(claimed) != 1:
            await self.revoke_grant(row.grant_id)
            return OAuthError(
                "invalid_grant", "the authorization code was already used; the tokens issued for it are revoked"
            )
        if row.expires_at <= now:
            return OAuthError("invalid_grant", "the authorization code has expired")
        if redirect_uri != row.redirect_uri:
            return OAuthError("invalid_grant", "redirect_uri does not match the one of the authorization request")
        if not _VERIFIER.match(verifier) or not pkce_matches(verifier, row.code_challenge):
            return OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
        if resource is not None and resource != row.resource:
            return OAuthError("invalid_target", f"this code was issued for {row.resource}, not {resource[:200]}")
        return await self._issue(row.grant_id)

    async def refresh(  # noqa: PLR0911  (one early answer per check)
        self, client: OAuthClient, token: str | None, resource: str | None, scope: str | None
    ) -> dict[str, Any] | OAuthError:
        if not token:
            return OAuthError("invalid_request", "refresh_token is required")
        digest = hash_key(token)
        row = (
            await self._session.execute(
                select(
                    oauth_refresh_tokens,
                    oauth_grants.c.client_id,
                    oauth_grants.c.resource,
                    oauth_grants.c.scope,
                    oauth_grants.c.revoked_at,
                )
                .join(oauth_grants, oauth_grants.c.id == oauth_refresh_tokens.c.grant_id)
                .where(oauth_refresh_tokens.c.token_hash == digest)
            )
        ).first()
        if row is None or row.client_id != client.client_id or row.revoked_at is not None:
            return OAuthError("invalid_grant", "the refresh token is not valid")
        now = self._now()
        claimed = await self._session.execute(
            update(oauth_refresh_tokens)
            .where(oauth_refresh_tokens.c.token_hash == digest, oauth_refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        if rows_changed(claimed) != 1:
            await self.revoke_grant(row.grant_id)
            return OAuthError(
                "invalid_grant", "the refresh token was already used; every token of this grant is now revoked"
            )
        if row.expires_at <= now:
            return OAuthError("invalid_grant", "the refresh token has expired; log in again")
        if resource is not None and resource != row.resource:
            return OAuthError("invalid_target", f"this grant is for {row.resource}, not {resource[:200]}")
        if not is_narrower(scope, row.scope) and scope != row.scope:
            return OAuthError("invalid_scope", "a refresh cannot ask for more scope than the grant holds")
        return await self._issue(row.grant_id)

    async def revoke(self, client: OAuthClient, token: str) -> None:
        """RFC 7009: revoke the grant behind a refresh or access token of this client; unknown tokens are ignored."""
        grant_id: str | None = await self._session.scalar(
            select(oauth_refresh_tokens.c.grant_id).where(oauth_refresh_tokens.c.token_hash == hash_key(token))
        )
        if grant_id is None:
            grant_id = self._tokens.grant_of(token)
        if grant_id is None:
            return
        owner = await self._session.scalar(select(oauth_grants.c.client_id).where(oauth_grants.c.id == grant_id))
        if owner == client.client_id:
            await self.revoke_grant(grant_id)

    async def revoke_grant(self, grant_id: str) -> None:
        """Revoke the grant; the API keys its tokens created go with it (security review 26)."""
        await revoke_grants(self._session, [grant_id], self._now())

    def authorized_apps(self, principal: Principal) -> AuthorizedApps:
        """The OAuth clients the principal's person has authorized in its organization."""
        return AuthorizedApps(self._session, principal, self._targets, self._now())

    async def _issue(self, grant_id: str) -> dict[str, Any]:
        grant = (await self._session.execute(select(oauth_grants).where(oauth_grants.c.id == grant_id))).one()
        now = self._now()
        # Housekeeping within this grant (indexed by grant id): used refresh tokens are kept a day for reuse
        # detection, expired codes are of no use at all.
        await self._session.execute(
            delete(oauth_refresh_tokens).where(
                oauth_refresh_tokens.c.grant_id == grant_id, oauth_refresh_tokens.c.used_at < now - _KEEP_USED
            )
        )
        await self._session.execute(
            delete(oauth_codes).where(oauth_codes.c.grant_id == grant_id, oauth_codes.c.expires_at < now)
        )
        refresh = "mgrt_" + secrets.token_urlsafe(32)
        await self._session.execute(
            oauth_refresh_tokens.insert().values(
                token_hash=hash_key(refresh), grant_id=grant_id, created_at=now, expires_at=now + self._refresh_lifetime
            )
        )
        access = self._tokens.issue(
            user_id=grant.user_id,
            organization_id=grant.organization_id,
            grant_id=grant_id,
            audience=grant.resource,
            scope=grant.scope,
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._tokens.lifetime_s,
            "refresh_token": refresh,
        }
        if grant.scope:
            answer["scope"] = grant.scope
        return answer
