"""Driving meshgate's OAuth pages the way a browser would, and the MCP SDK's own OAuth client around it."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from meshgate.bootstrap import bootstrap_owner
from support.gateway import Gateway
from support.secrets import remember_secret

REDIRECT_URI = "http://127.0.0.1:33418/callback"
PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    email: str
    password: str
    user_id: str
    organization_id: str
    api_key: str


async def new_person(gateway: Gateway, org: str = "OAuth Org") -> Person:
    """A user with a password who owns a new organization."""
    email = f"person-{uuid.uuid4().hex[:10]}@example.com"
    result = await bootstrap_owner(gateway.env["DATABASE_URL"], email=email, password=PASSWORD, org_name=org)
    remember_secret(result.api_key)
    return Person(email, PASSWORD, result.user_id, result.organization_id, result.api_key)


class _Forms(HTMLParser):
    """Every input, select option and button of a page, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.options: dict[str, list[str]] = {}
        self.buttons: list[tuple[str, str]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "input" and "name" in values:
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "select":
            self._select = values.get("name")
            self.options.setdefault(self._select or "", [])
        elif tag == "option" and self._select is not None:
            self.options[self._select].append(values.get("value", ""))
        elif tag == "button" and "name" in values:
            self.buttons.append((values["name"], values.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms_of(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


@asynccontextmanager
async def logged_in(gateway: Gateway, email: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a browser session of `email` (logged in on `/login`)."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        login = await http.get("/login")
        fields = {**forms_of(login.text).fields, "email": email, "password": password, "next": "/app"}
        answer = await http.post("/login", data=fields)
        assert answer.status_code == 303, answer.text
        yield http


@dataclass
class Browser:
    """Logs in on `/login` and answers the consent page; stops at the redirect back to the client."""

    person: Person
    decision: str = "allow"
    organization_id: str | None = None
    pages: list[str] = field(default_factory=list[str])
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    async def authorize(self, url: str) -> httpx.Response:
        """Open an authorization URL; returns the response that redirects to the client (or an error page)."""
        response = await self.http.get(url)
        if response.status_code == 303 and "/login" in response.headers["location"]:
            login_url = urljoin(url, response.headers["location"])
            page = await self.http.get(login_url)
            fields = forms_of(page.text).fields
            response = await self.http.post(
                urljoin(url, "/login"),
                data={**fields, "email": self.person.email, "password": self.person.password},
            )
            assert response.status_code == 303, response.text
            response = await self.http.get(urljoin(url, response.headers["location"]))
        if response.status_code != 200:
            return response
        self.pages.append(response.text)
        form = forms_of(response.text)
        data = dict(form.fields)
        if self.organization_id is not None:
            data["organization_id"] = self.organization_id
        data["decision"] = self.decision
        return await self.http.post(urljoin(url, "/oauth/authorize"), data=data)

    async def code_for(self, url: str) -> AuthorizationCodeResult:
        response = await self.authorize(url)
        assert response.status_code == 302, f"{response.status_code}: {response.text[:500]}"
        query = parse_qs(urlsplit(response.headers["location"]).query)
        if "error" in query:
            raise AssertionError(f"authorization refused: {query}")
        return AuthorizationCodeResult(
            code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
        )


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        remember_secret(tokens.access_token)
        if tokens.refresh_token:
            remember_secret(tokens.refresh_token)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def sdk_provider(
    server_url: str,
    browser: Browser,
    *,
    storage: MemoryStorage | None = None,
    scope: str | None = None,
    client_metadata_url: str | None = None,
) -> OAuthClientProvider:
    """The MCP SDK's OAuth client, whose "browser" is `browser`."""
    pending: list[str] = []

    async def redirect(url: str) -> None:
        pending.append(url)

    async def callback() -> AuthorizationCodeResult:
        return await browser.code_for(pending.pop())

    metadata = OAuthClientMetadata(
        client_name="meshgate tests",
        redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        scope=scope,
    )
    return OAuthClientProvider(
        server_url,
        metadata,
        storage or MemoryStorage(),
        redirect_handler=redirect,
        callback_handler=callback,
        client_metadata_url=client_metadata_url,
    )


@asynccontextmanager
async def connect_oauth(url: str, provider: OAuthClientProvider, mode: str = "legacy") -> AsyncIterator[Client]:
    async with (
        create_mcp_http_client(auth=provider) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class HandClient:
    """An OAuth client driven by hand, to send exactly the requests (good and bad) a test needs."""

    gateway: Gateway
    client_id: str
    http: httpx.AsyncClient

    @classmethod
    async def register(cls, gateway: Gateway, redirect_uri: str = REDIRECT_URI) -> HandClient:
        http = httpx.AsyncClient(base_url=gateway.url, timeout=30)
        answer = await http.post(
            "/oauth/register",
            json={
                "client_name": "hand client",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            },
        )
        assert answer.status_code == 201, answer.text
        return cls(gateway, answer.json()["client_id"], http)

    def authorize_url(
        self,
        challenge: str | None,
        *,
        resource: str | None,
        scope: str | None = None,
        redirect_uri: str = REDIRECT_URI,
        method: str | None = "S256",
        state: str = "st4te",
    ) -> str:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri, "state": state}
        if challenge is not None:
            params["code_challenge"] = challenge
        if method is not None:
            params["code_challenge_method"] = method
        if resource is not None:
            params["resource"] = resource
        if scope is not None:
            params["scope"] = scope
        return str(httpx.URL(f"{self.gateway.url}/oauth/authorize", params=params))

    async def code(self, person: Person, *, resource: str, scope: str | None = None) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        result = await Browser(person).code_for(self.authorize_url(challenge, resource=resource, scope=scope))
        return result.code, verifier

    async def exchange(
        self, code: str, verifier: str | None, *, redirect_uri: str = REDIRECT_URI, resource: str | None = None
    ) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
        }
        if verifier is not None:
            data["code_verifier"] = verifier
        if resource is not None:
            data["resource"] = resource
        return await self.http.post("/oauth/token", data=data)

    async def tokens(self, person: Person, *, resource: str, scope: str | None = None) -> dict[str, Any]:
        code, verifier = await self.code(person, resource=resource, scope=scope)
        answer = await self.exchange(code, verifier)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        remember_secret(body["access_token"])
        remember_secret(body["refresh_token"])
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id},
        )

    async def revoke(self, token: str) -> httpx.Response:
        return await self.http.post("/oauth/revoke", data={"token": token, "client_id": self.client_id})
