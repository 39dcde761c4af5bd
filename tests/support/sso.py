"""A served gateway (its clock held by the test) beside a real OpenID Connect provider process, and the walk of
one browser through `/sso/start` → the provider's sign-in form → `/sso/callback`."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from meshgate.db.database import Database
from meshgate.identity.models import User
from meshgate.identity.service import UserService
from support.gateway import Gateway, free_port, spawn_server
from support.mcp_client import call, connect
from support.oauth import Person, forms_of, new_person
from support.secrets import remember_secret
from support.served import TestClock, served_gateway

CLIENT_ID = "meshgate-test-client"


@dataclass
class IdentityProvider:
    port: int
    client_secret: str
    process: subprocess.Popen[bytes]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def identity_provider(redirect_uri: str) -> Iterator[IdentityProvider]:
    """`support.oidc_provider` in its own process, with meshgate's client registered at it."""
    port, secret = free_port(), remember_secret(secrets.token_urlsafe(24))
    args = ["--port", str(port), "--client-id", CLIENT_ID, f"--client-secret={secret}", "--redirect-uri", redirect_uri]
    process = spawn_server("support.oidc_provider", port, args)
    try:
        yield IdentityProvider(port, secret, process)
    finally:
        process.kill()
        process.wait(timeout=10)


@dataclass
class SsoSetup:
    gateway: Gateway
    provider: IdentityProvider
    owner: Person
    slug: str
    clock: TestClock


@asynccontextmanager
async def sso_gateway(
    database_url: str, tmp: Path, domains: tuple[str, ...] = ("sso.example",)
) -> AsyncIterator[SsoSetup]:
    """A gateway whose new organization signs in with the test provider; `domains` join it."""
    clock = TestClock()
    async with served_gateway(database_url, tmp, clock) as gateway:
        with identity_provider(f"{gateway.url}/sso/callback") as provider:
            owner = await new_person(gateway, "SSO Org")
            async with connect(gateway.mcp_url, owner.api_key) as client:
                slug = (await call(client, "ORGANIZATION_GET"))["slug"]
                settings = {"provider": "oidc", "issuer": provider.issuer, "clientId": CLIENT_ID}
                await call(client, "ORGANIZATION_SSO_SET", {**settings, "clientSecret": provider.client_secret})
                if domains:
                    await call(client, "ORGANIZATION_DOMAIN_SET", {"domains": list(domains)})
            yield SsoSetup(gateway, provider, owner, slug, clock)


@dataclass
class Walk:
    started: httpx.Response  # the gateway's answer to /sso/start
    callback_url: str  # where the provider sent the browser back (path and query on the gateway)
    answer: httpx.Response  # the gateway's answer to the callback


async def to_provider(http: httpx.AsyncClient, slug: str, next_url: str = "/app") -> httpx.Response:
    """`/sso/start`: the gateway's redirect to the provider."""
    return await http.get("/sso/start", params={"org": slug, "next": next_url})


async def at_provider(
    http: httpx.AsyncClient, authorization_url: str, email: str, *, verified: bool = True, flaw: str = "", sub: str = ""
) -> str:
    """Fill in the provider's sign-in form; the path and query it sends the browser back to."""
    form = await http.get(authorization_url)
    assert form.status_code == 200, form.text
    fields = {**forms_of(form.text).fields, "email": email, "flaw": flaw, "sub": sub}
    if not verified:
        del fields["email_verified"]
    parts = urlsplit(authorization_url)
    sent = await http.post(f"{parts.scheme}://{parts.netloc}/authorize", data=fields)
    assert sent.status_code == 302, sent.text
    back = urlsplit(sent.headers["location"])
    return f"{back.path}?{back.query}"


async def walk(
    http: httpx.AsyncClient, setup: SsoSetup, email: str, *, verified: bool = True, flaw: str = "", sub: str = ""
) -> Walk:
    started = await to_provider(http, setup.slug)
    assert started.status_code == 303, started.text
    callback = await at_provider(http, started.headers["location"], email, verified=verified, flaw=flaw, sub=sub)
    return Walk(started, callback, await http.get(callback))


async def user_named(gateway: Gateway, email: str) -> User | None:
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            return await UserService(session).find_by_email(email)
    finally:
        await db.close()
