"""A small OpenID Connect provider, run as its own process on 127.0.0.1 (`python -m support.oidc_provider`).

It speaks the documented wire format: `/.well-known/openid-configuration`, an authorization endpoint that shows
a sign-in form (the person types who they are), the code flow with PKCE S256 checked at the token endpoint with
client_secret_basic, and RS256 `id_token`s signed with joserfc (an implementation independent of the PyJWT that
meshgate verifies with) by a key published at `/jwks`. The form's `flaw` field makes the next token wrong in
one way a test names: `audience`, `nonce`, `issuer`, `signature` (another key under the same kid), `expired`.
Two test-only endpoints: `GET /test/jwks-requests` (how often `/jwks` was fetched) and `POST /test/rotate`
(replace the signing key by one with a new `kid`; the old one is no longer published).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

FLAWS = ("", "audience", "nonce", "issuer", "signature", "expired")
_FORM_FIELDS = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method")


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    claims: dict[str, Any]
    flaw: str
    expires: float


class Provider:
    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.rogue = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.grants: dict[str, Grant] = {}
        self.jwks_requests = 0
        self.rotations = 0

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.configuration),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize_form, methods=["GET"]),
            Route("/authorize", self.authorize, methods=["POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/test/jwks-requests", self.count_jwks, methods=["GET"]),
            Route("/test/rotate", self.rotate, methods=["POST"]),
        ]

    async def configuration(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid", "email", "profile"],
                "claims_supported": ["sub", "email", "email_verified", "name"],
            }
        )

    async def count_jwks(self, _request: Request) -> Response:
        return JSONResponse({"count": self.jwks_requests})

    async def rotate(self, _request: Request) -> Response:
        self.rotations += 1
        kid = f"k{self.rotations + 1}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        self.rogue = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"kid": kid})

    async def jwks(self, _request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    def _problem(self, query: Any) -> str | None:
        if query.get("client_id") != self.client_id:
            return "unknown client_id"
        if query.get("redirect_uri") != self.redirect_uri:
            return "redirect_uri is not registered"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        if "openid" not in (query.get("scope") or "").split():
            return "scope must include openid"
        return None

    async def authorize_form(self, request: Request) -> Response:
        query = request.query_params
        problem = self._problem(query)
        if problem:
            return HTMLResponse(f"<h1>Bad request</h1><p>{html.escape(problem)}</p>", 400)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name) or "")}">' for name in _FORM_FIELDS
        )
        options = "".join(f'<option value="{flaw}">{flaw or "none"}</option>' for flaw in FLAWS)
        page = (
            "<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>"
            f'<form method="post" action="/authorize">{hidden}'
            '<label>Email <input name="email" type="email" required></label>'
            '<label>Name <input name="name"></label>'
            '<label>Subject <input name="sub"></label>'
            '<label><input type="checkbox" name="email_verified" value="true" checked> verified</label>'
            f'<label>Flaw <select name="flaw">{options}</select></label>'
            '<button type="submit">Sign in</button></form>'
        )
        return HTMLResponse(page)

    async def authorize(self, request: Request) -> Response:
        form = await request.form()
        fields = {name: str(form.get(name) or "") for name in (*_FORM_FIELDS, "email", "name", "sub", "flaw")}
        problem = self._problem(fields)
        if problem or fields["flaw"] not in FLAWS:
            return HTMLResponse(f"<h1>Bad request</h1><p>{html.escape(problem or 'unknown flaw')}</p>", 400)
        email = fields["email"]
        claims: dict[str, Any] = {
            "sub": fields["sub"] or "sub-" + hashlib.sha256(email.encode()).hexdigest()[:16],
            "email": email,
            "email_verified": form.get("email_verified") == "true",
        }
        if fields["name"]:
            claims["name"] = fields["name"]
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            fields["client_id"],
            fields["redirect_uri"],
            fields["code_challenge"],
            fields["nonce"] or None,
            claims,
            fields["flaw"],
            time.time() + 60,
        )
        answer = {"code": code, "state": fields["state"], "iss": self.issuer}
        return RedirectResponse(f"{fields['redirect_uri']}?{urlencode(answer)}", status_code=302)

    def _client_authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return hmac.compare_digest(header[6:], expected)

    async def token(self, request: Request) -> Response:
        if not self._client_authenticated(request):
            return JSONResponse({"error": "invalid_client"}, 401)
        form = await request.form()
        grant = self.grants.pop(str(form.get("code") or ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None or grant.expires < time.time():
            return JSONResponse({"error": "invalid_grant"}, 400)
        verifier = str(form.get("code_verifier") or "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE or redirect_uri"}, 400)
        now = int(time.time())
        claims = {**grant.claims, "iss": self.issuer, "aud": grant.client_id, "iat": now, "exp": now + 300}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        key = self.key
        if grant.flaw == "audience":
            claims["aud"] = "another-client"
        elif grant.flaw == "nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif grant.flaw == "issuer":
            claims["iss"] = "http://127.0.0.1:1/elsewhere"
        elif grant.flaw == "signature":
            key = self.rogue
        elif grant.flaw == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)
        return JSONResponse(
            {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    args = parser.parse_args()
    provider = Provider(f"http://127.0.0.1:{args.port}", args.client_id, args.client_secret, args.redirect_uri)
    uvicorn.run(Starlette(routes=provider.routes()), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
