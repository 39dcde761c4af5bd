"""An OAuth-protected MCP server built on the SDK's `mcp.server.auth` (authorization server + resource server).

Run: python -m support.oauth_upstream --port N [--token-seconds S], or in the test's own event loop with
`build(port, Provider(seconds, clock))` (support.served) when the test moves the clock.
The authorization endpoint approves at once (the person's login there is the upstream's business) and
redirects back with a code. `GET /stats` reports registrations, code exchanges and refreshes;
`POST /forget-grants` drops every refresh and access token so the next refresh gets `invalid_grant`.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import JSONResponse


class Provider:
    """Everything in memory; tokens live `token_seconds` on `clock` (epoch seconds)."""

    def __init__(self, token_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.token_seconds = token_seconds
        self.clock = clock
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.stats = {"registrations": 0, "exchanges": 0, "refreshes": 0, "resources": []}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info
        self.stats["registrations"] += 1

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=self.clock() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="upstream-user",
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client: OAuthClientInformationFull, code: str) -> AuthorizationCode | None:
        return self.codes.get(code)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires = int(self.clock()) + self.token_seconds
        self.access_tokens[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires, resource=resource
        )
        self.refresh_tokens[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        self.stats["resources"].append(resource)
        self.stats["last_access_token"] = access  # test-only: lets a test look for it in meshgate's database
        return OAuthToken(
            access_token=access, token_type="Bearer", expires_in=self.token_seconds, refresh_token=refresh
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        self.stats["exchanges"] += 1
        return self._issue(authorization_code.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return self.refresh_tokens.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.refresh_tokens.pop(refresh_token.token, None) is None:
            raise TokenError("invalid_grant", "refresh token already used")
        self.stats["refreshes"] += 1
        return self._issue(refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or (found.expires_at is not None and found.expires_at <= self.clock()):
            return None
        return found

    async def revoke_token(self, token: Any) -> None:
        self.access_tokens.pop(getattr(token, "token", ""), None)
        self.refresh_tokens.pop(getattr(token, "token", ""), None)


def build(port: int, provider: Provider) -> Any:
    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        "oauth-upstream",
        # A test provider: it offers no identity-assertion grant, which the SDK's protocol now lists.
        auth_server_provider=provider,  # pyright: ignore[reportArgumentType]
        auth=AuthSettings(
            issuer_url=base,  # type: ignore[arg-type]
            resource_server_url=f"{base}/mcp",  # type: ignore[arg-type]
            client_registration_options=ClientRegistrationOptions(enabled=True),
            revocation_options=RevocationOptions(enabled=True),
            validate_token_resource=True,
        ),
    )

    @server.tool(description="Say that the caller got through")
    def whoami() -> str:
        return "authorized by the upstream's own OAuth"

    @server.custom_route("/stats", methods=["GET"])
    async def stats(_request: Request) -> JSONResponse:
        return JSONResponse(provider.stats)

    @server.custom_route("/forget-grants", methods=["POST"])
    async def forget(_request: Request) -> JSONResponse:
        provider.refresh_tokens.clear()
        provider.access_tokens.clear()
        return JSONResponse({"forgotten": True})

    return server.streamable_http_app(host="127.0.0.1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-seconds", type=int, default=3600)
    args = parser.parse_args()
    app = build(args.port, Provider(args.token_seconds))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
