"""Signing in with an organization's identity provider: `/sso/start` sends the browser there, `/sso/callback`
brings it back.

`start` discovers the issuer, makes a `state`, a `nonce` and a PKCE verifier (S256), and keeps them sealed in
`sso_flows` bound to a secret cookie of the browser that started; the row is deleted on the first callback
whatever its outcome, so a `state` works once and only in that browser. `finish` exchanges the code, validates
the `id_token` (see `meshgate.sso.oidc`) and decides whose account it is, in this order:

1. the account already linked to this issuer and subject, while it is a member of the organization;
2. else an account with the address the provider confirmed, if that account's owner proved the address to this
   gateway too (an unproved one is refused: it could belong to someone who typed another person's address),
   it is a member already or the address's domain joins the organization, and either the browser is signed in
   to that very account (the person links it themselves) or the account belongs to no other organization (an
   organization's provider is trusted for its own people, never as a way into other organizations' accounts);
3. else a new account, only for an address whose domain joins the organization.

People who join get the organization's default role (never owner). A refusal creates nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access.ratelimit import Rate, TokenBuckets
from meshgate.connections.addresses import AddressPolicy
from meshgate.db.database import Database
from meshgate.db.rows import new_id
from meshgate.db.tables import members, organization_domains, organizations, sso_flows, sso_identities
from meshgate.errors import NotFound, RateLimited
from meshgate.identity.models import User
from meshgate.identity.service import MemberService, UserService, hash_key
from meshgate.sso.github import SCOPES as GITHUB_SCOPES
from meshgate.sso.github import GitHubClient, github_metadata
from meshgate.sso.jwks import JwksCache
from meshgate.sso.models import GITHUB, GITHUB_ISSUER
from meshgate.sso.oidc import (
    Identity,
    OidcClient,
    ProviderMetadata,
    SignInRefused,
    token_kid,
    validate_id_token,
)
from meshgate.sso.service import SsoSettings
from meshgate.vault import Vault

FLOW_SECONDS = 600
# Each start stores a row and makes the gateway fetch the issuer's metadata: bounded per client address.
START_RATE = Rate(per_second=0.5, burst=20)
_UNKNOWN = "this sign-in is unknown, was finished already or has expired; start again from the login page"
_NO_SSO = "no organization with this slug signs in with single sign-on"


@dataclass(frozen=True, slots=True)
class Started:
    url: str  # where the browser goes: the identity provider's authorization endpoint
    browser: str  # the secret the browser keeps in a cookie until it comes back


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    organization_slug: str
    next: str
    joined: bool  # a membership was created by this sign-in


def _context(organization_id: str) -> bytes:
    return f"sso-flow:{organization_id}".encode()


def subject_hash(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


class SsoSignIn:
    """Starts and finishes OpenID Connect sign-ins for any organization that set one up."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        addresses: AddressPolicy,
        public_url: str,
        *,
        clock: Callable[[], float] = time.time,
        github_url: str = "https://github.com",
        github_api_url: str = "https://api.github.com",
    ) -> None:
        self._db = db
        self._vault = vault
        self._addresses = addresses
        self._client = OidcClient(addresses)
        self.redirect_uri = f"{public_url}/sso/callback"
        self._clock = clock
        self._jwks = JwksCache(self._client, clock=clock)
        self._github_url = github_url
        self._github = GitHubClient(addresses, github_api_url)
        self._starts = TokenBuckets()

    def _settings(self, session: AsyncSession, organization_id: str) -> SsoSettings:
        return SsoSettings(session, organization_id, self._vault, loopback_allowed=not self._addresses.block_private)

    async def start(self, organization_slug: str, next_path: str, client: str) -> Started:
        """The authorization URL for a sign-in to `organization_slug`, and the browser secret it is bound to.

        Raises `RateLimited` when `client` (the peer address) started too many sign-ins."""
        wait = self._starts.take(client, START_RATE)
        if wait is not None:
            raise RateLimited(f"too many sign-ins were started; try again in {max(1, round(wait))} s", retry_after=wait)
        async with self._db.transaction() as session:
            org_id = await session.scalar(select(organizations.c.id).where(organizations.c.slug == organization_slug))
            config = None if org_id is None else await self._settings(session, org_id).get()
        if org_id is None or config is None:
            raise NotFound(_NO_SSO)
        github = config.provider == GITHUB
        provider = github_metadata(self._github_url) if github else await self._client.discover(config.issuer)
        state, nonce, verifier, browser = (secrets.token_urlsafe(32) for _ in range(4))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        flow = {"nonce": nonce, "verifier": verifier, "next": next_path, "provider": provider.to_dict()}
        flow["kind"] = config.provider
        now = self._now()
        async with self._db.transaction() as session:
            await session.execute(delete(sso_flows).where(sso_flows.c.expires_at < now))
            await session.execute(
                sso_flows.insert().values(
                    state_hash=hash_key(state),
                    organization_id=org_id,
                    browser_hash=hash_key(browser),
                    sealed=self._vault.seal(orjson.dumps(flow), context=_context(org_id)),
                    expires_at=now + timedelta(seconds=FLOW_SECONDS),
                )
            )
        params = {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": GITHUB_SCOPES if github else config.scopes,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if not github:
            params["nonce"] = nonce
        return Started(self._client.authorization_url(provider, params), browser)

    async def finish(
        self,
        state: str | None,
        browser: str | None,
        *,
        code: str | None,
        iss: str | None,
        error: str | None,
        signed_in_as: str | None = None,
    ) -> SignedIn:
        """The account the identity provider's answer signs in to; `SignInRefused` (or `NotFound`) otherwise.

        `signed_in_as` is the user the browser already has a session of (who may link their own account)."""
        if not state or len(state) > 100:
            raise NotFound(_UNKNOWN)
        async with self._db.transaction() as session:
            row = (await session.execute(select(sso_flows).where(sso_flows.c.state_hash == hash_key(state)))).first()
            if row is not None:  # used up by its first callback, whatever happens next
                await session.execute(delete(sso_flows).where(sso_flows.c.state_hash == row.state_hash))
        if row is None or row.expires_at <= self._now():
            raise NotFound(_UNKNOWN)
        if browser is None or not hmac.compare_digest(row.browser_hash, hash_key(browser[:100])):
            raise SignInRefused("this sign-in was started in another browser; start again from the login page")
        flow: dict[str, Any] = orjson.loads(self._vault.open(row.sealed, context=_context(row.organization_id)))
        provider = ProviderMetadata.from_dict(flow["provider"])
        if error:
            raise SignInRefused(f"the identity provider refused the sign-in ({error[:60]})")
        if iss is not None and iss.rstrip("/") != provider.issuer.rstrip("/"):
            raise SignInRefused("the answer came from another issuer than this organization's (iss does not match)")
        if not code or len(code) > 2048:
            raise SignInRefused("the identity provider's answer carries no code")
        async with self._db.transaction() as session:
            settings = self._settings(session, row.organization_id)
            config, secret = await settings.get(), await settings.client_secret()
        if config is None:
            raise NotFound(_NO_SSO)
        expected = GITHUB_ISSUER if config.provider == GITHUB else config.issuer
        if flow.get("kind") != config.provider or provider.issuer.rstrip("/") != expected.rstrip("/"):
            # Never send the client secret to a provider the organization no longer uses.
            raise SignInRefused("the organization's single sign-on changed during this sign-in; start again")
        if config.provider == GITHUB:
            identity = await self._github_identity(provider, code, flow["verifier"], config.client_id, secret)
        else:
            token = await self._client.exchange(
                provider,
                code=code,
                verifier=flow["verifier"],
                redirect_uri=self.redirect_uri,
                client_id=config.client_id,
                client_secret=secret,
            )
            keys = await self._jwks.keys(provider, token_kid(token))
            identity = validate_id_token(
                token, keys, provider, client_id=config.client_id, nonce=flow["nonce"], now=self._clock()
            )
        async with self._db.transaction() as session:
            user, joined = await _account(
                session, row.organization_id, identity, config.default_role, self._now(), signed_in_as=signed_in_as
            )
            slug = str(
                await session.scalar(select(organizations.c.slug).where(organizations.c.id == row.organization_id))
            )
        return SignedIn(user, slug, str(flow["next"]), joined)

    async def _github_identity(
        self, provider: ProviderMetadata, code: str, verifier: str, client_id: str, secret: str | None
    ) -> Identity:
        if not secret:
            raise SignInRefused("the GitHub setup has no client secret; an owner must set one")
        token = await self._github.access_token(
            provider, code=code, verifier=verifier, redirect_uri=self.redirect_uri, client_id=client_id, secret=secret
        )
        return await self._github.identity(token)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


async def _account(
    session: AsyncSession,
    organization_id: str,
    identity: Identity,
    role: str,
    now: datetime,
    *,
    signed_in_as: str | None,
) -> tuple[User, bool]:
    """The account `identity` signs in to (see the module's docstring), creating what is needed."""
    users, members = UserService(session), MemberService(session, organization_id)
    key = subject_hash(identity.issuer, identity.subject)
    linked = (
        await session.execute(
            select(sso_identities).where(
                sso_identities.c.organization_id == organization_id, sso_identities.c.subject_hash == key
            )
        )
    ).first()
    if linked is not None:
        user = await users.get(linked.user_id)
        if user is not None and await members.find_by_user(user.id) is not None:
            await session.execute(
                update(sso_identities).where(sso_identities.c.id == linked.id).values(last_login_at=now)
            )
            return user, False
    email = identity.email.strip().lower()
    domain = email.rsplit("@", 1)[-1]
    joins = (
        await session.scalar(
            select(organization_domains.c.domain).where(
                organization_domains.c.domain == domain, organization_domains.c.organization_id == organization_id
            )
        )
        is not None
    )
    user = await users.find_by_email(email)
    if user is not None and not user.email_verified:
        raise SignInRefused(
            f"an account with the address {email} exists but its owner has not confirmed the address to this "
            "gateway; sign in to it another way and confirm the address first"
        )
    member = None if user is None else await members.find_by_user(user.id)
    if member is None and not joins:
        raise SignInRefused(
            f"{email} is not a member of this organization, and addresses at {domain} do not join it by themselves; "
            "ask an owner for an invitation"
        )
    if user is not None and user.id != signed_in_as and await _elsewhere(session, user.id, organization_id):
        raise SignInRefused(
            f"the account {email} belongs to other organizations too: log in to it first (with its password or a "
            "sign-in link), then sign in with single sign-on once to link the two"
        )
    joined = False
    if user is None:
        user = await users.create(email, name=identity.name, verified=True)
    if member is None:
        await members.add(user.id, role)
        joined = True
    if linked is not None:
        await session.execute(
            update(sso_identities).where(sso_identities.c.id == linked.id).values(user_id=user.id, last_login_at=now)
        )
    else:
        await session.execute(
            sso_identities.insert().values(
                id=new_id(),
                organization_id=organization_id,
                issuer=identity.issuer[:2048],
                subject_hash=key,
                user_id=user.id,
                created_at=now,
                last_login_at=now,
            )
        )
    return user, joined


async def _elsewhere(session: AsyncSession, user_id: str, organization_id: str) -> bool:
    """Whether the user is a member of an organization other than `organization_id`."""
    found = await session.scalar(
        select(members.c.id).where(members.c.user_id == user_id, members.c.organization_id != organization_id).limit(1)
    )
    return found is not None
