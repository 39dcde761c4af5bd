"""A gateway served in the test's loop (its clock held by the test) whose mail goes to a real SMTP server,
and a browser-like HTTP client of its own for each person (sign-in links, invitations, the account page)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import httpx

from support.gateway import Gateway
from support.mail import SmtpSink, link_in, smtp_server
from support.oauth import forms_of
from support.served import TestClock, served_gateway


@asynccontextmanager
async def mail_gateway(
    database_url: str, tmp: Path, clock: TestClock, auth: dict[str, Any] | None = None, **env: str
) -> AsyncIterator[tuple[Gateway, SmtpSink]]:
    """The gateway with an SMTP provider for every purpose, magic links on, plus `auth` keys."""
    with smtp_server() as sink:
        provider = {"host": "127.0.0.1", "port": sink.port, "security": "none", "fromEmail": "noreply@example.com"}
        config = {
            "emailProviders": [{"id": "smtp", "provider": "smtp", "config": provider}],
            "magicLinkConfig": {"enabled": True},
            **(auth or {}),
        }
        path = tmp / "auth-config.json"
        path.write_text(json.dumps(config))
        async with served_gateway(database_url, tmp, clock, MESHGATE_AUTH_CONFIG=str(path), **env) as gateway:
            yield gateway, sink


async def mail_to(sink: SmtpSink, address: str, count: int = 1) -> EmailMessage:
    """The `count`-th message to `address`, waiting without blocking the loop the gateway runs in."""
    with anyio.fail_after(30):
        while True:
            arrived = sink.to(address)
            if len(arrived) >= count:
                return arrived[count - 1]
            await anyio.sleep(0.02)


async def mailed_link(gateway: Gateway, sink: SmtpSink, address: str, count: int = 1) -> str:
    """The path of the link in that message."""
    return link_in(await mail_to(sink, address, count)).removeprefix(gateway.url)


@asynccontextmanager
async def browser(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """One browser: its own cookies, redirects not followed (each test checks where they lead)."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        yield http


async def submit(http: httpx.AsyncClient, page: str, action: str | None = None, **fields: str) -> httpx.Response:
    """Open `page` (for its CSRF token and hidden fields) and post its form to `action` (default: the page)."""
    shown = await http.get(page)
    assert shown.status_code == 200, shown.text
    return await http.post(action or page, data={**forms_of(shown.text).fields, **fields})


async def log_in(http: httpx.AsyncClient, email: str, password: str, next_url: str = "/app") -> httpx.Response:
    return await submit(http, "/login", email=email, password=password, next=next_url)


async def ask_for_link(http: httpx.AsyncClient, email: str) -> httpx.Response:
    """Post the login page's "email me a link" form."""
    return await submit(http, "/login", "/login/magic", email=email)
