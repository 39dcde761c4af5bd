"""The consent page says where the code goes and does not vouch for a self-registered client (review 8)."""

from __future__ import annotations

import httpx
import pytest

from support.gateway import Gateway
from support.oauth import REDIRECT_URI, Browser, HandClient, new_person, pkce_pair

pytestmark = pytest.mark.anyio


@pytest.mark.finding(8)
async def test_consent_shows_the_redirect_host_and_marks_a_self_registered_name_unverified(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        answer = await http.post(
            "/oauth/register",
            json={
                "client_name": "Claude Desktop",
                "client_uri": "https://claude.ai",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
            },
        )
    assert answer.status_code == 201, answer.text
    client = HandClient(gateway, answer.json()["client_id"], httpx.AsyncClient(base_url=gateway.url, timeout=30))
    browser = Browser(await new_person(gateway), decision="deny")
    _verifier, challenge = pkce_pair()
    await browser.authorize(client.authorize_url(challenge, resource=gateway.mcp_url))
    page = browser.pages[0]
    assert 'Access will be sent to <strong class="redirect-host">127.0.0.1</strong>' in page
    assert "unverified name" in page
    assert "claude.ai" not in page  # the client's own claim about where it lives is not repeated
