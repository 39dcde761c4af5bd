"""ORGANIZATION_SSO_* and ORGANIZATION_DOMAIN_* management tools (owners change them; anyone allowed may read)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from meshgate.errors import NotFound
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec
from meshgate.sso.models import GOOGLE_ISSUER, PROVIDERS
from meshgate.sso.service import SsoChange, SsoSettings


class NoInput(ToolInput):
    pass


class SsoSetInput(ToolInput):
    provider: str | None = Field(
        None,
        max_length=16,
        description=f"{', '.join(PROVIDERS)}; google fills in the issuer {GOOGLE_ISSUER}; github is "
        "GitHub's OAuth (its verified primary email is used)",
    )
    issuer: str | None = Field(None, max_length=2048, description="The OpenID Connect issuer URL (https)")
    clientId: str | None = Field(None, max_length=500, description="The client id the provider gave this gateway")  # noqa: N815  (camelCase like the other tools)
    clientSecret: str | None = Field(  # noqa: N815
        None, max_length=4096, description="The client secret (write-only; empty string removes it)"
    )
    scopes: str | None = Field(None, max_length=500, description="Space-separated; openid and email are always asked")
    defaultRole: str | None = Field(  # noqa: N815
        None, max_length=64, description="Role of people who join by their domain: member (default), admin or custom"
    )
    ssoRequired: bool | None = Field(  # noqa: N815
        None, description="Members may then sign in only with SSO: no password, no sign-in link"
    )


class DomainSetInput(ToolInput):
    domains: list[Annotated[str, Field(max_length=253)]] = Field(
        max_length=20, description="Email domains (example.com) whose confirmed addresses join by signing in with SSO"
    )


def _settings(ctx: ToolContext) -> SsoSettings:
    loopback = not ctx.runtime.settings.block_private_networks
    return SsoSettings(ctx.session, ctx.principal.organization_id, ctx.runtime.vault, loopback_allowed=loopback)


def _redirect_uri(ctx: ToolContext) -> str:
    return f"{ctx.runtime.settings.public_url}/sso/callback"


async def sso_get(ctx: ToolContext, _args: NoInput) -> Any:
    config = await _settings(ctx).get()
    if config is None:
        raise NotFound("this organization has no single sign-on configured; set it up with ORGANIZATION_SSO_SET")
    return {**config.to_dict(), "redirectUri": _redirect_uri(ctx)}


async def sso_set(ctx: ToolContext, args: SsoSetInput) -> Any:
    change = SsoChange(
        provider=args.provider,
        issuer=args.issuer,
        client_id=args.clientId,
        client_secret=args.clientSecret,
        scopes=args.scopes,
        default_role=args.defaultRole,
        sso_required=args.ssoRequired,
    )
    config = await _settings(ctx).set(ctx.principal, change)
    return {**config.to_dict(), "redirectUri": _redirect_uri(ctx)}


async def sso_clear(ctx: ToolContext, _args: NoInput) -> Any:
    await _settings(ctx).clear(ctx.principal)
    return {"organizationId": ctx.principal.organization_id, "cleared": True}


async def domain_get(ctx: ToolContext, _args: NoInput) -> Any:
    return {"organizationId": ctx.principal.organization_id, "domains": await _settings(ctx).domains()}


async def domain_set(ctx: ToolContext, args: DomainSetInput) -> Any:
    domains = await _settings(ctx).set_domains(ctx.principal, args.domains)
    return {"organizationId": ctx.principal.organization_id, "domains": domains}


async def domain_clear(ctx: ToolContext, _args: NoInput) -> Any:
    await _settings(ctx).clear_domains(ctx.principal)
    return {"organizationId": ctx.principal.organization_id, "domains": []}


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "ORGANIZATION_SSO_GET",
        "Read the organization's single sign-on setup (never the client secret) and the redirect URI to register.",
        NoInput,
        sso_get,
        read_only=True,
    ),
    ToolSpec(
        "ORGANIZATION_SSO_SET",
        "Set up or change OpenID Connect single sign-on for the organization (owners only); provider google "
        "is OpenID Connect with Google's issuer filled in.",
        SsoSetInput,
        sso_set,
    ),
    ToolSpec("ORGANIZATION_SSO_CLEAR", "Turn single sign-on off (owners only).", NoInput, sso_clear),
    ToolSpec(
        "ORGANIZATION_DOMAIN_GET",
        "List the email domains whose people join the organization when they sign in with its SSO.",
        NoInput,
        domain_get,
        read_only=True,
    ),
    ToolSpec(
        "ORGANIZATION_DOMAIN_SET",
        "Replace the organization's email domains (owners only); only addresses the identity provider confirmed "
        "join, with the SSO setup's defaultRole. A domain belongs to one organization on the gateway.",
        DomainSetInput,
        domain_set,
    ),
    ToolSpec(
        "ORGANIZATION_DOMAIN_CLEAR", "Remove all the organization's email domains (owners only).", NoInput, domain_clear
    ),
]
