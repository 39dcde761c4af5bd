"""Credentials for one endpoint (API key, or OAuth tokens refreshed on use) and calls of management tools."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx2
import orjson

from meshgate.jsonvalues import as_dict, as_list
from meshgate.protocol import HANDSHAKE_VERSION
from meshgate.remote import oauth
from meshgate.remote.credentials import CredentialStore, ServerLogin, TokenSet
from meshgate.remote.endpoints import MANAGEMENT_PATH, Endpoint
from meshgate.remote.errors import NotLoggedIn, RemoteError, Unreachable

REFRESH_MARGIN_S = 30.0  # refresh this long before the access token's expiry, so a call never races it
VERSION_HEADER = "mcp-protocol-version"


class Authorizer:
    """The `Authorization` value for one endpoint: an API key as it is, or an OAuth access token that is
    refreshed when it is about to expire or when the gateway refuses it (each refresh is saved at once:
    refresh tokens rotate, and the old one is used up)."""

    def __init__(
        self,
        http: httpx2.Client,
        endpoint: Endpoint,
        *,
        store: CredentialStore | None,
        login: ServerLogin | None,
        api_key: str | None = None,
        now: Callable[[], float] = time.time,
        sign_in: Callable[[], TokenSet] | None = None,
    ) -> None:
        self._http = http
        self._endpoint = endpoint
        self._store = store
        self._login = login
        self._api_key = api_key or (login.api_key if login is not None else None)
        self._now = now
        self._sign_in = sign_in  # an interactive login for an endpoint we hold no token for yet
        self._metadata: oauth.ServerMetadata | None = None

    def _tokens(self) -> TokenSet | None:
        return None if self._login is None else self._login.tokens.get(self._endpoint.path)

    def _save(self, tokens: TokenSet) -> None:
        if self._login is not None:
            self._login.tokens[self._endpoint.path] = tokens
            if self._store is not None:
                self._store.save(self._login)

    def bearer(self) -> str:
        if self._api_key is not None:
            return self._api_key
        tokens = self._tokens()
        if tokens is None:
            if self._sign_in is None:
                raise NotLoggedIn(
                    f"no login for {self._endpoint.resource}: run `meshgate login {self._endpoint.resource}`"
                )
            tokens = self._sign_in()
            self._save(tokens)
        elif tokens.expires_at is not None and self._now() >= tokens.expires_at - REFRESH_MARGIN_S:
            tokens = self._refresh(tokens)
        return tokens.access_token

    def after_refusal(self) -> str | None:
        """A fresh token after a 401, or None when there is nothing to refresh (an API key was refused)."""
        tokens = self._tokens()
        if self._api_key is not None or tokens is None:
            return None
        return self._refresh(tokens).access_token

    def _refresh(self, tokens: TokenSet) -> TokenSet:
        login = self._login
        if login is None or login.client_id is None:
            raise NotLoggedIn("the login cannot be refreshed: run `meshgate login` again")
        if self._metadata is None:
            self._metadata = oauth.discover(self._http, self._endpoint.base)
        fresh = oauth.refresh(
            self._http, self._metadata, login.client_id, self._endpoint.resource, tokens, now=self._now
        )
        self._save(fresh)
        return fresh


def refused_message(response: httpx2.Response, endpoint: Endpoint) -> str:
    try:
        body = response.json()
        reason = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
        reason = reason or body.get("error_description") or body.get("message")
    except ValueError:
        reason = None
    return f"{endpoint.resource} refused the credentials (HTTP 401{': ' + str(reason) if reason else ''})"


def rpc_answer(response: httpx2.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to `request_id` in a JSON or SSE (`text/event-stream`) response."""
    media = response.headers.get("content-type", "").split(";", 1)[0].strip()
    if media == "text/event-stream":
        for line in response.text.splitlines():
            if line.startswith("data:"):
                message = orjson.loads(line[5:].strip() or b"null")
                if isinstance(message, dict) and message.get("id") == request_id:  # pyright: ignore[reportUnknownMemberType]
                    return message  # pyright: ignore[reportUnknownVariableType]
        raise RemoteError("the gateway's event stream ended without an answer")
    try:
        message = orjson.loads(response.content)
    except orjson.JSONDecodeError as error:
        raise RemoteError(f"the gateway answered HTTP {response.status_code} with no JSON-RPC message") from error
    if not isinstance(message, dict):
        raise RemoteError("the gateway answered something that is not a JSON-RPC message")
    return message  # pyright: ignore[reportUnknownVariableType]


class ManagementClient:
    """Calls meshgate's management tools at `<gateway>/mcp` (one stateless POST per call)."""

    def __init__(self, http: httpx2.Client, base: str, authorizer: Authorizer) -> None:
        self._http = http
        self._endpoint = Endpoint(base=base, path=MANAGEMENT_PATH)
        self._auth = authorizer
        self._ids = itertools.count(1)

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The `result` of one JSON-RPC request; a JSON-RPC error becomes `RemoteError`."""
        request_id = next(self._ids)
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        response = self._post(body, self._auth.bearer())
        if response.status_code == 401:
            fresh = self._auth.after_refusal()
            if fresh is not None:
                response = self._post(body, fresh)
        if response.status_code == 401:
            raise NotLoggedIn(refused_message(response, self._endpoint))
        message = rpc_answer(response, request_id)
        error = message.get("error")
        if isinstance(error, dict):
            raise RemoteError(f"{method} failed: {error.get('message')} (JSON-RPC {error.get('code')})")  # pyright: ignore[reportUnknownMemberType]
        result = message.get("result")
        if not isinstance(result, dict):
            raise RemoteError(f"the gateway answered HTTP {response.status_code} without a result")
        return result  # pyright: ignore[reportUnknownVariableType]

    def _post(self, body: bytes, bearer: str) -> httpx2.Response:
        headers = {
            "authorization": f"Bearer {bearer}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            VERSION_HEADER: HANDSHAKE_VERSION,
        }
        return oauth.request(self._http, "POST", self._endpoint.url, content=body, headers=headers)

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """The structured result of a management tool; a tool error (`isError`) becomes `RemoteError`."""
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise RemoteError(f"{tool}: {_text_of(result) or 'the tool failed'}")
        structured = result.get("structuredContent")
        if structured is not None:
            return structured
        text = _text_of(result)
        try:
            return orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return text

    def tools(self) -> list[dict[str, Any]]:
        listed = self.request("tools/list", {}).get("tools")
        return list(listed) if isinstance(listed, list) else []  # pyright: ignore[reportUnknownArgumentType]


def _text_of(result: dict[str, Any]) -> str:
    items = [as_dict(item) for item in as_list(result.get("content"))]
    return "".join(str(item.get("text", "")) for item in items if item.get("type") == "text")


def http_client() -> httpx2.Client:
    return httpx2.Client(timeout=httpx2.Timeout(60.0, connect=10.0))


__all__ = ["Authorizer", "ManagementClient", "Unreachable", "http_client"]
