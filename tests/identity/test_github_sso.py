"""The GitHub preset over HTTP, against a stand-in for GitHub's OAuth endpoints and REST API in its own process
(tests/support/github_stand_in.py): GitHub's verified primary address signs in; an unverified primary address
is refused even beside a verified secondary one; GitHub's refusal of the client is shown; nothing is created."""

from __future__ import annotations

import html
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from support.gateway import Gateway, free_port, spawn_server
from support.mcp_client import call, connect
from support.oauth import Person, forms_of, new_person
from support.secrets import remember_secret
from support.served import TestClock, served_gateway
from support.sign_in import browser
from support.sso import user_named

pytestmark = pytest.mark.anyio
CLIENT_ID = "Iv1.meshgatetest"
DOMAIN = "gh.example"


@dataclass
class GitHubSetup:
    gateway: Gateway
    github_url: str
    secret: str
    owner: Person
    slug: str


@pytest.fixture
async def github(tmp_db: str, tmp_path: Path) -> AsyncIterator[GitHubSetup]:
    port, secret = free_port(), remember_secret(secrets.token_hex(20))
    url = f"http://127.0.0.1:{port}"
    extra = {"MESHGATE_SSO_GITHUB_URL": url, "MESHGATE_SSO_GITHUB_API_URL": f"{url}/api/v3"}
    async with served_gateway(tmp_db, tmp_path, TestClock(), **extra) as gateway:
        args = ["--port", str(port), "--client-id", CLIENT_ID, f"--client-secret={secret}"]
        process = spawn_server(
            "support.github_stand_in", port, [*args, "--redirect-uri", f"{gateway.url}/sso/callback"]
        )
        try:
            owner = await new_person(gateway, "GitHub Org")
            async with connect(gateway.mcp_url, owner.api_key) as client:
                slug = (await call(client, "ORGANIZATION_GET"))["slug"]
                settings = {"provider": "github", "clientId": CLIENT_ID, "clientSecret": secret}
                configured = await call(client, "ORGANIZATION_SSO_SET", settings)
                assert configured["issuer"] == "https://github.com" and configured["clientSecretSet"] is True
                await call(client, "ORGANIZATION_DOMAIN_SET", {"domains": [DOMAIN]})
            yield GitHubSetup(gateway, url, secret, owner, slug)
        finally:
            process.kill()
            process.wait(timeout=10)


async def _walk(http: httpx.AsyncClient, setup: GitHubSetup, email: str, **typed: str) -> httpx.Response:
    started = await http.get("/sso/start", params={"org": setup.slug, "next": "/app"})
    assert started.status_code == 303, started.text
    authorization = started.headers["location"]
    assert authorization.startswith(f"{setup.github_url}/login/oauth/authorize?")
    assert "nonce=" not in authorization and "scope=read%3Auser+user%3Aemail" in authorization
    form = await http.get(authorization)
    assert form.status_code == 200, form.text
    fields = {**forms_of(form.text).fields, "login": f"octo-{uuid.uuid4().hex[:6]}", "email": email, **typed}
    if typed.get("verified") == "":
        del fields["verified"]
    sent = await http.post(f"{setup.github_url}/login/oauth/authorize", data=fields)
    assert sent.status_code == 302, sent.text
    back = urlsplit(sent.headers["location"])
    return await http.get(f"{back.path}?{back.query}")


async def _members(setup: GitHubSetup) -> dict[str, str]:
    async with connect(setup.gateway.mcp_url, setup.owner.api_key) as client:
        return {m["email"]: m["role"] for m in (await call(client, "ORGANIZATION_MEMBER_LIST"))["items"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"], indirect=True)
async def test_githubs_verified_primary_address_signs_in_and_joins(github: GitHubSetup) -> None:
    email = f"p-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    async with browser(github.gateway) as http:
        answer = await _walk(http, github, email)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].endswith("/app")
        assert SESSION_COOKIE in answer.headers.get("set-cookie", "")
        account = await http.get("/app/account")
        assert account.status_code == 200 and email in account.text
    assert (await _members(github))[email] == "member"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unverified_primary_address_is_refused_beside_a_verified_secondary_one(github: GitHubSetup) -> None:
    primary, secondary = (f"{who}-{uuid.uuid4().hex[:8]}@{DOMAIN}" for who in ("primary", "secondary"))
    async with browser(github.gateway) as http:
        refused = await _walk(http, github, primary, verified="", secondary=secondary)
        assert refused.status_code == 403, refused.text
        assert f"GitHub has not verified the primary address {primary}" in html.unescape(refused.text)
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    assert await user_named(github.gateway, primary) is None
    assert await user_named(github.gateway, secondary) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_githubs_refusal_of_the_client_is_shown_and_signs_nobody_in(github: GitHubSetup) -> None:
    async with connect(github.gateway.mcp_url, github.owner.api_key) as client:
        await call(client, "ORGANIZATION_SSO_SET", {"clientSecret": "not-the-secret"})
    email = f"p-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    async with browser(github.gateway) as http:
        refused = await _walk(http, github, email)
        assert refused.status_code == 403, refused.text
        assert "GitHub did not give an access token for the code (incorrect_client_credentials)" in html.unescape(
            refused.text
        )
    assert await user_named(github.gateway, email) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_sign_in_started_before_the_provider_changed_is_refused(github: GitHubSetup) -> None:
    email = f"p-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    async with browser(github.gateway) as http:
        started = await http.get("/sso/start", params={"org": github.slug, "next": "/app"})
        assert started.status_code == 303
        form = await http.get(started.headers["location"])
        fields = {**forms_of(form.text).fields, "login": "octo-late", "email": email}
        sent = await http.post(f"{github.github_url}/login/oauth/authorize", data=fields)
        async with connect(github.gateway.mcp_url, github.owner.api_key) as client:
            change = {"provider": "oidc", "issuer": "http://127.0.0.1:1", "clientId": CLIENT_ID}
            await call(client, "ORGANIZATION_SSO_SET", change)
        back = urlsplit(sent.headers["location"])
        refused = await http.get(f"{back.path}?{back.query}")
        assert refused.status_code == 403, refused.text
        assert "single sign-on changed during this sign-in" in html.unescape(refused.text)
    assert await user_named(github.gateway, email) is None
