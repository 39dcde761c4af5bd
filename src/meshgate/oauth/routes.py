"""OAuth 2.1 HTTP endpoints: discovery, registration, authorization (consent page), token, revocation."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import InvalidInput, MeshgateError, OAuthError, RateLimited
from meshgate.http.errors import retry_after
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web, client_address
from meshgate.keys import KeyPurpose, derive_key
from meshgate.oauth import metadata
from meshgate.oauth.clients import ClientRegistry, OAuthClient, Registration, redirect_host
from meshgate.oauth.scopes import describe, normalize_scope, permissions_for_scope
from meshgate.oauth.service import Authorization, AuthorizationService

MAX_REGISTRATION_BYTES = 64 * 1024
_CONSENT_SECONDS = 600
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "600",
}
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers={**_CORS, **(headers or {})}, media_type="application/json")


def _oauth_error(error: OAuthError) -> Response:
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="meshgate"'
    return _json(error.oauth_body(), error.status, headers)


def _refused(error: OAuthError | RateLimited) -> Response:
    return _rate_limited(error) if isinstance(error, RateLimited) else _oauth_error(error)


def _rate_limited(error: RateLimited) -> Response:
    # RFC 6749 has no error code for this; 429 with Retry-After is what clients understand.
    body = {"error": "rate_limited", "error_description": error.message}
    return _json(body, 429, {**_NO_STORE, "Retry-After": retry_after(error)})


class OAuthEndpoints:
    def __init__(self, web: Web, clients: ClientRegistry) -> None:
        self._web = web
        self._runtime = web.runtime
        self._clients = clients
        self._issuer = web.runtime.settings.public_url
        self._consent_key = derive_key(web.runtime.settings.secret, KeyPurpose.CONSENT)

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/oauth-authorization-server", self.server_metadata, methods=["GET", "OPTIONS"]),
            Route(
                "/.well-known/oauth-authorization-server/{rest:path}", self.server_metadata, methods=["GET", "OPTIONS"]
            ),
            Route("/.well-known/openid-configuration", self.openid_configuration, methods=["GET", "OPTIONS"]),
            Route("/.well-known/oauth-protected-resource", self.resource_metadata, methods=["GET", "OPTIONS"]),
            Route(
                "/.well-known/oauth-protected-resource/{rest:path}", self.resource_metadata, methods=["GET", "OPTIONS"]
            ),
            Route("/oauth/register", self.register, methods=["POST", "OPTIONS"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/authorize", self.decide, methods=["POST"]),
            Route("/oauth/token", self.token, methods=["POST", "OPTIONS"]),
            Route("/oauth/revoke", self.revoke, methods=["POST", "OPTIONS"]),
        ]

    # --- discovery ------------------------------------------------------------------------------------------

    async def server_metadata(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        return _json(metadata.authorization_server(self._issuer))

    async def openid_configuration(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        return _json(metadata.openid_configuration(self._issuer))

    async def resource_metadata(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        rest = request.path_params.get("rest")
        path = "/mcp" if rest is None else "/" + str(rest).strip("/")
        if not metadata.is_resource_path(path):
            return _json({"error": "not_found", "error_description": f"{path[:200]} is not an MCP endpoint"}, 404)
        return _json(metadata.protected_resource(self._issuer, path))

    # --- registration ---------------------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        try:
            body = await _read_json(request)
            registration = Registration.parse(body)
            async with self._runtime.db.transaction() as session:
                answer, _secret = await self._clients.register(session, registration, client_address(request))
        except (OAuthError, RateLimited) as error:
            return _refused(error)
        except MeshgateError as error:
            return _json({"error": "invalid_client_metadata", "error_description": error.message}, error.http_status)
        return _json(answer, 201, _NO_STORE)

    # --- authorization --------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        try:
            client, redirect_uri = await self._client_and_redirect(params, client_address(request))
        except RateLimited as error:
            page = self._web.page(
                request, "message.html", 429, heading="Cannot authorize", message=error.message, error=True
            )
            page.headers["Retry-After"] = retry_after(error)
            return page
        except OAuthError as error:
            # Never redirect to an address that is not proven to belong to the client.
            return self._web.page(
                request, "message.html", 400, heading="Cannot authorize", message=error.message, error=True
            )
        state = params.get("state")
        try:
            request_token, scope, resource = self._check_request(client, redirect_uri, params)
        except OAuthError as error:
            return self._redirect(redirect_uri, {"error": error.error, "error_description": error.message}, state)
        user = await self._web.user(request)
        if user is None:
            target = request.url.path + ("?" + request.url.query if request.url.query else "")
            return RedirectResponse(f"{self._web.base}/login?next={quote(target, safe='')}", status_code=303)
        try:
            async with self._runtime.db.transaction() as session:
                target = await self._service(session).consent_target(user.id, resource)
        except MeshgateError as error:
            return self._cannot_authorize(request, error)
        signed = jwt.encode(
            {**request_token, "uid": user.id, "exp": int(time.time()) + _CONSENT_SECONDS},
            self._consent_key,
            algorithm="HS256",
        )
        return self._web.page(
            request,
            "consent.html",
            client_name=client.name,
            client_host=client.host,
            client_verified=client.verified,
            redirect_host=redirect_host(redirect_uri),
            target=target,
            permissions=describe(permissions_for_scope(scope)),
            user=user,
            organizations=target.organizations,
            request_token=signed,
        )

    async def _client_and_redirect(self, params: Any, address: str) -> tuple[OAuthClient, str]:
        if any(len(params.getlist(name)) > 1 for name in params):
            raise OAuthError("invalid_request", "a parameter appears more than once")
        async with self._runtime.db.transaction() as session:
            client = await self._clients.find(session, params.get("client_id", ""), address)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or not client.redirect_allowed(redirect_uri):
            raise OAuthError("invalid_request", "redirect_uri is missing or not registered for this client")
        return client, redirect_uri

    def _check_request(
        self, client: OAuthClient, redirect_uri: str, params: Any
    ) -> tuple[dict[str, Any], str | None, str]:
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if not challenge:
            raise OAuthError("invalid_request", "code_challenge is required (PKCE with S256)")
        if method != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256; plain is not accepted")
        if not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", "code_challenge must be 43 to 128 characters (base64url SHA-256)")
        resource = params.get("resource")
        if resource is None:
            raise OAuthError("invalid_target", "resource is required: the URL of the MCP endpoint the token is for")
        if metadata.resource_of(self._issuer, resource) is None:
            raise OAuthError("invalid_target", f"{resource[:200]} is not an MCP endpoint of {self._issuer}")
        scope = normalize_scope(params.get("scope"))
        permissions_for_scope(scope)
        token = {
            "cid": client.client_id,
            "ru": redirect_uri,
            "st": params.get("state"),
            "cc": challenge,
            "res": resource,
            "sc": scope,
        }
        return token, scope, resource

    async def decide(self, request: Request) -> Response:  # noqa: PLR0911  (one page per way a form can fail)
        try:
            form = await read_form(request)
            raw = single(form, "request") or ""
            decision = single(form, "decision")
            organization_id = single(form, "organization_id")
        except MeshgateError as error:
            return self._web.page(
                request, "message.html", 400, heading="Bad request", message=error.message, error=True
            )
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        try:
            pending: dict[str, Any] = jwt.decode(raw, self._consent_key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return self._web.page(
                request,
                "message.html",
                400,
                heading="Request expired",
                message="This authorization request expired; start again from your client.",
                error=True,
            )
        user = await self._web.user(request)
        if user is None or user.id != pending.get("uid"):
            return self._web.refused(request)
        redirect_uri, state = str(pending["ru"]), pending.get("st")
        if decision != "allow":
            return self._redirect(
                redirect_uri, {"error": "access_denied", "error_description": "the user denied access"}, state
            )
        authorization = Authorization(
            client_id=str(pending["cid"]),
            user_id=user.id,
            organization_id=organization_id or "",
            redirect_uri=redirect_uri,
            code_challenge=str(pending["cc"]),
            resource=str(pending["res"]),
            scope=pending.get("sc"),
            permissions=permissions_for_scope(pending.get("sc")),
        )
        try:
            async with self._runtime.db.transaction() as session:
                code = await self._service(session).issue_code(authorization)
        except MeshgateError as error:
            return self._cannot_authorize(request, error)
        return self._redirect(redirect_uri, {"code": code}, state)

    def _cannot_authorize(self, request: Request, error: MeshgateError) -> Response:
        """An error page for the person; nothing goes to the client's redirect URI."""
        return self._web.page(
            request, "message.html", error.http_status, heading="Cannot authorize", message=error.message, error=True
        )

    def _redirect(self, redirect_uri: str, values: dict[str, str], state: str | None) -> Response:
        query = dict(values)
        if state is not None:
            query["state"] = state
        query["iss"] = self._issuer
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(redirect_uri + separator + urlencode(query), status_code=302, headers=_NO_STORE)

    # --- token and revocation -------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        try:
            form = await _oauth_form(request)
            grant_type = single(form, "grant_type")
            async with self._runtime.db.transaction() as session:
                client = await self._clients.authenticate(
                    session,
                    single(form, "client_id"),
                    single(form, "client_secret"),
                    request.headers.get("authorization"),
                    client_address(request),
                )
                service = self._service(session)
                if grant_type == "authorization_code":
                    outcome = await service.exchange_code(
                        client,
                        single(form, "code"),
                        single(form, "redirect_uri"),
                        single(form, "code_verifier"),
                        single(form, "resource"),
                    )
                elif grant_type == "refresh_token":
                    outcome = await service.refresh(
                        client,
                        single(form, "refresh_token"),
                        single(form, "resource"),
                        normalize_scope(single(form, "scope")),
                    )
                else:
                    outcome = OAuthError(
                        "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
                    )
        except (OAuthError, RateLimited) as error:
            return _refused(error)
        except InvalidInput as error:
            return _oauth_error(OAuthError("invalid_request", error.message))
        except MeshgateError as error:
            return _json({"error": "invalid_request", "error_description": error.message}, error.http_status)
        if isinstance(outcome, OAuthError):
            return _oauth_error(outcome)
        return _json(outcome, 200, _NO_STORE)

    async def revoke(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json({}, 204)
        try:
            form = await _oauth_form(request)
            token = single(form, "token")
            async with self._runtime.db.transaction() as session:
                client = await self._clients.authenticate(
                    session,
                    single(form, "client_id"),
                    single(form, "client_secret"),
                    request.headers.get("authorization"),
                    client_address(request),
                )
                if token:
                    await self._service(session).revoke(client, token)
            if not token:
                return _oauth_error(OAuthError("invalid_request", "token is required"))
        except (OAuthError, RateLimited) as error:
            return _refused(error)
        except MeshgateError as error:
            return _oauth_error(OAuthError("invalid_request", error.message))
        return _json({}, 200, _NO_STORE)

    def _service(self, session: Any) -> AuthorizationService:
        return AuthorizationService(
            session,
            self._runtime.access_tokens,
            self._runtime.settings.oauth_refresh_token_seconds,
            self._runtime.vault,
        )


async def _oauth_form(request: Request) -> dict[str, list[str]]:
    try:
        return await read_form(request)
    except MeshgateError as error:
        raise OAuthError("invalid_request", error.message) from error


async def _read_json(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise OAuthError("invalid_client_metadata", "send the registration as application/json")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REGISTRATION_BYTES:
            raise OAuthError("invalid_client_metadata", f"registration is over {MAX_REGISTRATION_BYTES} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise OAuthError("invalid_client_metadata", "the registration body is not valid JSON") from exc
