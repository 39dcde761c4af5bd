"""Management tools for OAuth clients that an admin registers by hand (for clients that cannot register
themselves); the secret of a confidential client is returned once."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec
from meshgate.oauth.clients import OAuthClient
from meshgate.oauth.grants import AuthorizedApps
from meshgate.oauth.service import AuthorizationService


class ClientCreateInput(ToolInput):
    name: str = Field(description="Shown on the consent page, 1-200 characters", min_length=1, max_length=200)
    redirectUris: list[str] = Field(  # noqa: N815  (camelCase like the other tools' inputs)
        description="1-20 redirect URIs: https, http on 127.0.0.1/localhost, or a native app's private scheme",
        min_length=1,
        max_length=20,
    )
    confidential: bool = Field(
        False, description="true: the client gets a secret (client_secret_basic); false: a public PKCE-only client"
    )


class ClientIdInput(ToolInput):
    clientId: str = Field(description="client_id from OAUTH_CLIENT_LIST", max_length=512)  # noqa: N815


class AuthorizedClientInput(ToolInput):
    clientId: str = Field(description="clientId from OAUTH_GRANT_LIST", max_length=512)  # noqa: N815


class NoInput(ToolInput):
    pass


class ConnectionIdInput(ToolInput):
    id: str = Field(description="Id of a connection whose data.oauth is set", max_length=36)


def _view(client: OAuthClient) -> dict[str, Any]:
    return {
        "clientId": client.client_id,
        "name": client.name,
        "redirectUris": list(client.redirect_uris),
        "tokenEndpointAuthMethod": client.auth_method,
    }


async def client_create(ctx: ToolContext, args: ClientCreateInput) -> dict[str, Any]:
    client, secret = await ctx.runtime.oauth_clients.create_registered(
        ctx.session, ctx.principal.organization_id, args.name, args.redirectUris, args.confidential
    )
    view = _view(client)
    if secret is not None:
        view["clientSecret"] = secret
        view["note"] = "the client secret is shown only now; store it in the client"
    return view


async def client_list(ctx: ToolContext, _args: NoInput) -> dict[str, Any]:
    clients = await ctx.runtime.oauth_clients.list_registered(ctx.session, ctx.principal.organization_id)
    return {"items": [_view(client) for client in clients]}


async def client_delete(ctx: ToolContext, args: ClientIdInput) -> dict[str, Any]:
    await ctx.runtime.oauth_clients.delete_registered(ctx.session, ctx.principal.organization_id, args.clientId)
    return {"clientId": args.clientId, "deleted": True}


def _apps(ctx: ToolContext) -> AuthorizedApps:
    runtime = ctx.runtime
    service = AuthorizationService(
        ctx.session, runtime.access_tokens, runtime.settings.oauth_refresh_token_seconds, runtime.vault
    )
    return service.authorized_apps(ctx.principal)


async def grant_list(ctx: ToolContext, _args: NoInput) -> dict[str, Any]:
    return {"items": [app.to_dict() for app in await _apps(ctx).list()]}


async def grant_revoke(ctx: ToolContext, args: AuthorizedClientInput) -> dict[str, Any]:
    revoked = await _apps(ctx).revoke(args.clientId)
    return {"clientId": args.clientId, "revokedGrants": revoked}


async def connection_oauth_start(ctx: ToolContext, args: ConnectionIdInput) -> dict[str, Any]:
    return await ctx.runtime.upstream_oauth.start(
        ctx.session, ctx.principal.organization_id, ctx.principal.user_id, args.id
    )


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "CONNECTION_OAUTH_START",
        "Start authorizing meshgate at an OAuth-protected server: returns a URL for a person to open; when they "
        "approve, meshgate stores the tokens (encrypted) and refreshes them by itself.",
        ConnectionIdInput,
        connection_oauth_start,
    ),
    ToolSpec(
        "OAUTH_CLIENT_CREATE",
        "Register an OAuth client by hand (for MCP clients that cannot use dynamic registration).",
        ClientCreateInput,
        client_create,
    ),
    ToolSpec("OAUTH_CLIENT_LIST", "List OAuth clients registered by this organization.", NoInput, client_list, True),
    ToolSpec(
        "OAUTH_CLIENT_DELETE", "Delete an OAuth client registered by this organization.", ClientIdInput, client_delete
    ),
    ToolSpec(
        "OAUTH_GRANT_LIST",
        "List the OAuth clients (apps) you have authorized in this organization: name, redirect hosts, what they "
        "reach, when granted and when they last got tokens.",
        NoInput,
        grant_list,
        True,
    ),
    ToolSpec(
        "OAUTH_GRANT_REVOKE",
        "Revoke an app you authorized in this organization: its refresh and access tokens stop working at once.",
        AuthorizedClientInput,
        grant_revoke,
    ),
]
