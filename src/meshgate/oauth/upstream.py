"""meshgate as an OAuth client of OAuth-protected upstream MCP servers.

`start()` discovers the server's protected resource metadata and its authorization server (RFC 9728,
RFC 8414), registers meshgate dynamically unless the connection has a pre-registered client, and
returns an authorization URL (PKCE S256, `state`, RFC 8707 `resource`) that a person opens. The
authorization server redirects to `/oauth/callback`, where `finish()` exchanges the code and seals
the tokens in the vault. `refresh()` renews them before they expire: once per connection across
replicas (the row is locked and re-read), keeping the stored tokens unless the server answers a
permanent `invalid_grant`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from sqlalchemy import delete, select

from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.service import ConnectionService, connection_topic
from meshgate.connections.upstream_tokens import UpstreamTokens, UpstreamTokenStore
from meshgate.db.database import Database, announce_change
from meshgate.db.tables import oauth_upstream_flows
from meshgate.errors import InvalidInput, NotFound, OAuthSetupError
from meshgate.identity.service import hash_key
from meshgate.jsonvalues import as_dict, as_list
from meshgate.oauth.fetch import Fetched, FetchError, fetch
from meshgate.oauth.server_metadata import ServerMetadata, check_authorization_endpoint, origin, same_issuer
from meshgate.vault import Vault

log = logging.getLogger(__name__)

FLOW_SECONDS = 600
_RESOURCE_METADATA = re.compile(r'resource_metadata="([^"]+)"')
_RETRY_AFTER_FAILURE_S = 5.0
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")  # what RFC 6749 error codes look like, kept short


class UpstreamOAuth:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        addresses: AddressPolicy,
        public_url: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock  # epoch seconds: token expiry, when a refresh is due, back-off after a failure
        self._db = db
        self._vault = vault
        self._addresses = addresses
        self.redirect_uri = f"{public_url}/oauth/callback"
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed_at: dict[str, float] = {}

    # --- starting a flow ------------------------------------------------------------------------------------

    async def start(self, session: Any, organization_id: str, user_id: str, connection_id: str) -> dict[str, Any]:
        service = ConnectionService(session, organization_id, self._vault)
        connection = await service.get(connection_id)
        stored = await service.secrets(connection_id)
        if stored.oauth is None or connection.connection_url is None:
            raise InvalidInput(
                f"connection {connection.title} does not use OAuth; set data.oauth with COLLECTION_CONNECTIONS_UPDATE"
            )
        server = await self._discover(connection.connection_url)
        client_id = stored.oauth.get("client_id")
        client_secret = stored.oauth.get("client_secret")
        auth_method = "client_secret_post" if client_secret else "none"
        if not client_id:
            client_id, client_secret, auth_method = await self._register(server)
        verifier = secrets.token_urlsafe(64)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        state = secrets.token_urlsafe(32)
        scope = stored.oauth.get("scope") or server.scopes
        flow = {
            "verifier": verifier,
            "client_id": client_id,
            "client_secret": client_secret,
            "auth_method": auth_method,
            "token_endpoint": server.token_endpoint,
            "issuer": server.issuer,
            "iss_parameter": server.iss_parameter,
            "resource": server.resource,
            "user_id": user_id,
        }
        now = self._now()
        expires = now + timedelta(seconds=FLOW_SECONDS)
        await session.execute(delete(oauth_upstream_flows).where(oauth_upstream_flows.c.expires_at < now))
        await session.execute(
            oauth_upstream_flows.insert().values(
                state_hash=hash_key(state),
                connection_id=connection_id,
                organization_id=organization_id,
                sealed=self._vault.seal(orjson.dumps(flow), context=_flow_context(connection_id)),
                expires_at=expires,
            )
        )
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": server.resource,
        }
        if scope:
            params["scope"] = scope
        separator = "&" if urlsplit(server.authorization_endpoint).query else "?"
        return {
            "id": connection_id,
            "authorizationUrl": server.authorization_endpoint + separator + urlencode(params),
            "redirectUri": self.redirect_uri,
            "expiresAt": expires.isoformat().replace("+00:00", "Z"),
            "next": "open authorizationUrl in a browser and approve; meshgate stores the tokens when it returns",
        }

    async def _discover(self, url: str) -> ServerMetadata:
        resource_doc = await self._protected_resource(url)
        resource = url
        scopes: str | None = None
        if resource_doc is not None:
            servers = [s for s in as_list(resource_doc.get("authorization_servers")) if isinstance(s, str)]
            if not servers:
                raise OAuthSetupError(f"{url}: protected resource metadata names no authorization server")
            issuer = servers[0]
            declared = resource_doc.get("resource")
            if isinstance(declared, str):
                if origin(declared) != origin(url):
                    raise OAuthSetupError(
                        f"{url}: protected resource metadata is for another server ({declared[:200]})"
                    )
                resource = declared
            supported = [s for s in as_list(resource_doc.get("scopes_supported")) if isinstance(s, str)]
            scopes = " ".join(supported) or None
        else:
            issuer = origin(url)  # servers from before RFC 9728 host their authorization server at their origin
        document = await self._server_metadata(issuer)
        found = str(document.get("issuer", ""))
        if not same_issuer(found, issuer):
            raise OAuthSetupError(f"authorization server metadata names issuer {found[:200]!r}, expected {issuer}")
        methods = as_list(document.get("code_challenge_methods_supported"))
        if "S256" not in methods:
            raise OAuthSetupError(f"authorization server {issuer} does not support PKCE with S256")
        try:
            return ServerMetadata(
                issuer=found,
                authorization_endpoint=check_authorization_endpoint(
                    str(document["authorization_endpoint"]), self._addresses
                ),
                token_endpoint=str(document["token_endpoint"]),
                registration_endpoint=document.get("registration_endpoint"),
                iss_parameter=bool(document.get("authorization_response_iss_parameter_supported")),
                resource=resource,
                scopes=scopes,
            )
        except KeyError as exc:
            raise OAuthSetupError(f"authorization server metadata of {issuer} lacks {exc.args[0]}") from exc

    async def _protected_resource(self, url: str) -> dict[str, Any] | None:
        candidates: list[str] = []
        try:
            probe = await fetch(
                url,
                addresses=self._addresses,
                method="POST",
                headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
                body=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
            )
            match = _RESOURCE_METADATA.search(probe.headers.get("www-authenticate", ""))
            if probe.status == 401 and match:
                candidates.append(match.group(1))
        except FetchError as exc:
            raise OAuthSetupError(f"cannot reach {url}: {exc}") from exc
        path = urlsplit(url).path.rstrip("/")
        candidates += [f"{origin(url)}/.well-known/oauth-protected-resource{path}"] if path else []
        candidates.append(f"{origin(url)}/.well-known/oauth-protected-resource")
        for candidate in candidates:
            document = await self._json(candidate)
            if document is not None:
                return document
        return None

    async def _server_metadata(self, issuer: str) -> dict[str, Any]:
        path = urlsplit(issuer).path.rstrip("/")
        base = origin(issuer)
        candidates = [
            f"{base}/.well-known/oauth-authorization-server{path}",
            f"{base}/.well-known/openid-configuration{path}",
        ]
        if path:
            candidates.append(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        for candidate in candidates:
            document = await self._json(candidate)
            if document is not None:
                return document
        raise OAuthSetupError(f"no authorization server metadata found for {issuer}")

    async def _json(self, url: str) -> dict[str, Any] | None:
        try:
            fetched = await fetch(url, addresses=self._addresses)
            if fetched.status != 200:
                return None
            document = fetched.json()
        except FetchError as exc:
            log.info("OAuth discovery: %s", exc)
            return None
        return as_dict(document) or None

    async def _register(self, server: ServerMetadata) -> tuple[str, str | None, str]:
        if server.registration_endpoint is None:
            raise OAuthSetupError(
                f"{server.issuer} offers no dynamic client registration; register meshgate there with redirect URI "
                f"{self.redirect_uri} and set data.oauth.client_id (and client_secret) on the connection"
            )
        body = {
            "client_name": "meshgate",
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
        }
        answer = await self._post(server.registration_endpoint, orjson.dumps(body), "application/json")
        document = as_dict(_json_of(answer))
        if answer.status not in (200, 201) or not isinstance(document.get("client_id"), str):
            raise OAuthSetupError(f"dynamic registration at {server.issuer} failed: {_reason(answer)}")
        secret = document.get("client_secret")
        method = str(document.get("token_endpoint_auth_method") or ("client_secret_post" if secret else "none"))
        return document["client_id"], secret if isinstance(secret, str) else None, method

    # --- finishing a flow -----------------------------------------------------------------------------------

    async def finish(
        self, state: str, user_id: str, code: str | None, iss: str | None, error: str | None
    ) -> tuple[str, str]:
        """Exchange the code of a flow `user_id` started; returns (organization id, connection id)."""
        unknown = NotFound("this authorization is unknown or expired; start again with CONNECTION_OAUTH_START")
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(oauth_upstream_flows).where(oauth_upstream_flows.c.state_hash == hash_key(state))
                )
            ).first()
            if row is None:
                raise unknown
            flow: dict[str, Any] = orjson.loads(self._vault.open(row.sealed, context=_flow_context(row.connection_id)))
            if flow.get("user_id") != user_id:
                raise unknown  # another person's flow: left for them, and not confirmed to exist
            await session.execute(
                delete(oauth_upstream_flows).where(oauth_upstream_flows.c.state_hash == row.state_hash)
            )
        if row.expires_at <= self._now():
            raise unknown
        if error:
            raise OAuthSetupError(f"the authorization server refused: {error_code(error)}")
        if iss is not None and not same_issuer(iss, flow["issuer"]):
            raise OAuthSetupError("the authorization response came from another issuer (RFC 9207 iss mismatch)")
        if iss is None and flow["iss_parameter"]:
            raise OAuthSetupError("the authorization response lacks the iss parameter its server promised")
        if not code:
            raise OAuthSetupError("the authorization response carries no code")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": flow["verifier"],
            "resource": flow["resource"],
        }
        tokens = await self._token_request(flow, form, previous_refresh=None)
        async with self._db.transaction() as session:
            await UpstreamTokenStore(session, self._vault).save(row.connection_id, tokens)
            await ConnectionService(session, row.organization_id, self._vault).update(
                row.connection_id, {"status_reason": None}
            )
            await announce_change(session, connection_topic(row.connection_id))
        return row.organization_id, row.connection_id

    async def _token_request(
        self, flow: dict[str, Any], form: dict[str, str], previous_refresh: str | None
    ) -> UpstreamTokens:
        form = {**form, "client_id": flow["client_id"]}
        if flow.get("client_secret"):
            form["client_secret"] = flow["client_secret"]
        answer = await self._post(flow["token_endpoint"], urlencode(form).encode(), "application/x-www-form-urlencoded")
        document = as_dict(_json_of(answer))
        access = document.get("access_token")
        if answer.status != 200 or not isinstance(access, str):
            raise TokenRefused(error_code(document.get("error")) or f"HTTP {answer.status}", _reason(answer))
        expires_in = document.get("expires_in")
        now = self.clock()
        refresh = document.get("refresh_token")
        return UpstreamTokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) else previous_refresh,
            expires_at=now + float(expires_in) if isinstance(expires_in, int | float) else None,
            issued_at=now,
            token_endpoint=flow["token_endpoint"],
            client_id=flow["client_id"],
            client_secret=flow.get("client_secret"),
            auth_method=flow.get("auth_method", "none"),
            resource=flow["resource"],
            issuer=flow["issuer"],
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _post(self, url: str, body: bytes, content_type: str) -> Fetched:
        try:
            return await fetch(
                url, addresses=self._addresses, method="POST", headers={"content-type": content_type}, body=body
            )
        except FetchError as exc:
            raise OAuthSetupError(str(exc)) from exc

    # --- refreshing -----------------------------------------------------------------------------------------

    def due(self, refresh_at: float | None) -> bool:
        """Whether a token that should be renewed at `refresh_at` (epoch seconds) is due now."""
        return refresh_at is not None and self.clock() >= refresh_at

    async def refresh(self, organization_id: str, connection_id: str) -> None:
        """Renew the connection's access token unless another process just did; never raises."""
        lock = self._locks.setdefault(connection_id, asyncio.Lock())
        if lock.locked():
            async with lock:
                return  # someone in this process refreshed while we waited
        if self.clock() - self._failed_at.get(connection_id, -1e9) < _RETRY_AFTER_FAILURE_S:
            return
        async with lock:
            try:
                await self._refresh_locked(organization_id, connection_id)
            except (OAuthSetupError, TokenRefused) as exc:
                self._failed_at[connection_id] = self.clock()
                log.warning("could not refresh the OAuth token of connection %s: %s", connection_id, exc)

    async def _refresh_locked(self, organization_id: str, connection_id: str) -> None:
        async with self._db.transaction() as session:
            store = UpstreamTokenStore(session, self._vault)
            loaded = await store.load(connection_id, lock=True)
            if loaded is None:
                return
            tokens, _updated = loaded
            refresh_at = tokens.refresh_at
            if tokens.refresh_token is None or (refresh_at is not None and self.clock() < refresh_at):
                # Another replica refreshed already; make sure this process sees the new token.
                await announce_change(session, connection_topic(connection_id))
                return
            flow = {
                "client_id": tokens.client_id,
                "client_secret": tokens.client_secret,
                "auth_method": tokens.auth_method,
                "token_endpoint": tokens.token_endpoint,
                "issuer": tokens.issuer,
                "resource": tokens.resource,
            }
            form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "resource": tokens.resource}
            try:
                renewed = await self._token_request(flow, form, previous_refresh=tokens.refresh_token)
            except TokenRefused as refused:
                if refused.error == "invalid_grant":
                    # Permanent: the grant is gone upstream. Forget the tokens so calls say "authorize again".
                    await store.forget(connection_id)
                    await ConnectionService(session, organization_id, self._vault).update(
                        connection_id, {"status_reason": f"OAuth grant ended ({refused}); authorize again"}
                    )
                    await announce_change(session, connection_topic(connection_id))
                    log.warning("upstream refused the refresh token of connection %s: %s", connection_id, refused)
                    return
                raise
            await store.save(connection_id, renewed)
            await announce_change(session, connection_topic(connection_id))
        log.info("refreshed the OAuth token of connection %s", connection_id)


class TokenRefused(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error


def _flow_context(connection_id: str) -> bytes:
    return f"connection-oauth-flow:{connection_id}".encode()


def _json_of(answer: Fetched) -> Any:
    try:
        return answer.json()
    except FetchError:
        return None


def error_code(value: Any) -> str:
    """An upstream's `error` as meshgate repeats it: an error-code-shaped word, else "unrecognized error"."""
    if not value:
        return ""
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else "unrecognized error"


def _reason(answer: Fetched) -> str:
    """The status and error code of a refusal; the upstream's own text (`error_description`, or a body that
    is not an OAuth error) is only logged, so meshgate never relays what another server wrote (review 10)."""
    document = as_dict(_json_of(answer))
    described = document.get("error_description")
    if described:
        log.info("%s answered HTTP %s: %.500r", answer.url[:200], answer.status, described)
    code = error_code(document.get("error"))
    return f"HTTP {answer.status}" + (f": {code}" if code else "")
