"""A stand-in for GitHub's OAuth web flow and REST API, run as its own process on 127.0.0.1
(`python -m support.github_stand_in`), speaking GitHub's documented wire format:

- `GET /login/oauth/authorize?client_id&redirect_uri&scope&state` shows a form (the person types who they are),
  then sends the browser to `redirect_uri?code&state`;
- `POST /login/oauth/access_token` (form: client_id, client_secret, code, redirect_uri, code_verifier) answers
  JSON when asked with `Accept: application/json`, and errors with HTTP 200 and an `error` field
  (`incorrect_client_credentials`, `bad_verification_code`, `redirect_uri_mismatch`) as GitHub does;
- the REST API under `/api/v3` (GitHub Enterprise's layout): `GET /user` and `GET /user/emails` with
  `Authorization: Bearer <token>`, `401 {"message": "Bad credentials"}` otherwise.

The form's `secondary` field adds a second, verified, non-primary address, so a test shows only the primary one
is used.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

_FIELDS = ("client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method")


@dataclass
class Grant:
    redirect_uri: str
    challenge: str
    user: dict[str, Any]
    emails: list[dict[str, Any]]
    expires: float


class GitHub:
    def __init__(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, Grant] = {}
        self.next_id = 1000

    def routes(self) -> list[Route]:
        return [
            Route("/login/oauth/authorize", self.authorize_form, methods=["GET"]),
            Route("/login/oauth/authorize", self.authorize, methods=["POST"]),
            Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
            Route("/api/v3/user", self.user, methods=["GET"]),
            Route("/api/v3/user/emails", self.emails, methods=["GET"]),
        ]

    async def authorize_form(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id:
            return HTMLResponse("<h1>Not found</h1>", 404)  # GitHub shows a 404 page for an unknown client
        if query.get("redirect_uri") not in (None, self.redirect_uri):
            return HTMLResponse("<h1>Redirect URI mismatch</h1>", 400)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name) or "")}">' for name in _FIELDS
        )
        page = (
            "<!doctype html><title>GitHub stand-in</title><h1>Authorize meshgate (GitHub stand-in)</h1>"
            f'<form method="post" action="/login/oauth/authorize">{hidden}'
            '<label>Login <input name="login" required></label>'
            '<label>Email <input name="email" type="email" required></label>'
            '<label><input type="checkbox" name="verified" value="true" checked> verified</label>'
            '<label>Secondary <input name="secondary" type="email"></label>'
            '<button type="submit">Authorize</button></form>'
        )
        return HTMLResponse(page)

    async def authorize(self, request: Request) -> Response:
        form = await request.form()
        fields = {name: str(form.get(name) or "") for name in (*_FIELDS, "login", "email", "secondary")}
        login = fields["login"]
        user = {
            "login": login,
            "id": int(hashlib.sha256(login.encode()).hexdigest()[:8], 16),
            "name": None,
            "email": None,  # the public address: none chosen
            "type": "User",
        }
        emails = [
            {"email": fields["email"], "primary": True, "verified": form.get("verified") == "true", "visibility": None}
        ]
        if fields["secondary"]:
            emails.append({"email": fields["secondary"], "primary": False, "verified": True, "visibility": None})
        code = secrets.token_hex(10)
        redirect = fields["redirect_uri"] or self.redirect_uri
        self.grants[code] = Grant(redirect, fields["code_challenge"], user, emails, time.time() + 600)
        return RedirectResponse(f"{redirect}?{urlencode({'code': code, 'state': fields['state']})}", status_code=302)

    async def access_token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            answer = {
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect.",
            }
            return self._answer(request, answer)
        grant = self.grants.pop(str(form.get("code") or ""), None)
        if grant is None or grant.expires < time.time():
            return self._answer(
                request,
                {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."},
            )
        if form.get("redirect_uri") not in (None, grant.redirect_uri):
            return self._answer(request, {"error": "redirect_uri_mismatch"})
        if grant.challenge:
            verifier = str(form.get("code_verifier") or "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if digest != grant.challenge:
                return self._answer(request, {"error": "bad_verification_code"})
        token = "gho_" + secrets.token_hex(18)
        self.tokens[token] = grant
        return self._answer(request, {"access_token": token, "scope": "read:user,user:email", "token_type": "bearer"})

    def _answer(self, request: Request, document: dict[str, str]) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(document)
        return PlainTextResponse(urlencode(document), media_type="application/x-www-form-urlencoded")

    def _grant(self, request: Request) -> Grant | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return self.tokens.get(token) if scheme.lower() in ("bearer", "token") else None

    async def user(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse(grant.user)

    async def emails(self, request: Request) -> Response:
        grant = self._grant(request)
        if grant is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse(grant.emails)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    args = parser.parse_args()
    github = GitHub(args.client_id, args.client_secret, args.redirect_uri)
    uvicorn.run(Starlette(routes=github.routes()), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
