"""What the authorization server refuses, and how: codes, PKCE, redirect URIs, resources, refresh rotation,
revocation, consent and CSRF. Each refusal is checked for the RFC 6749 error code a client acts on."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from conftest import add_connection
from support.gateway import Gateway, Upstream, rpc
from support.mcp_client import call, call_error, connect
from support.oauth import Browser, HandClient, forms_of, new_person, pkce_pair
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def status_with(url: str, token: str) -> httpx.Response:
    return rpc(url, INITIALIZE, key=token)


def redirect_query(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text[:300]
    return parse_qs(urlsplit(response.headers["location"]).query)


async def test_discovery_documents_name_every_endpoint(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert server["issuer"] == gateway.url
        assert server["code_challenge_methods_supported"] == ["S256"]
        assert server["authorization_response_iss_parameter_supported"] is True
        assert server["client_id_metadata_document_supported"] is True
        for name in ("authorization", "token", "registration", "revocation"):
            assert server[f"{name}_endpoint"].startswith(gateway.url + "/oauth/")
        assert (await http.get("/.well-known/openid-configuration")).json()["token_endpoint"] == server[
            "token_endpoint"
        ]
        for path in ("/mcp", "/mcp/abc-123", "/mcp/virtual/v-1"):
            prm = (await http.get(f"/.well-known/oauth-protected-resource{path}")).json()
            assert prm == {**prm, "resource": gateway.url + path, "authorization_servers": [gateway.url]}
        assert (await http.get("/.well-known/oauth-protected-resource/health")).status_code == 404
    unauthenticated = rpc(f"{gateway.url}/mcp/abc-123", LIST, key=None)
    assert unauthenticated.status_code == 401
    assert (
        f'resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/mcp/abc-123"'
        in (unauthenticated.headers["www-authenticate"])
    )


async def test_a_code_works_once_and_reusing_it_revokes_its_tokens(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    code, verifier = await client.code(person, resource=gateway.mcp_url)
    first = await client.exchange(code, verifier)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    access = first.json()["access_token"]
    assert status_with(gateway.mcp_url, access).status_code == 200
    again = await client.exchange(code, verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    assert status_with(gateway.mcp_url, access).status_code == 401  # the stolen-code defence


async def test_pkce_is_required_and_only_s256(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    _verifier, challenge = pkce_pair()
    browser = Browser(person)
    missing = redirect_query(await browser.http.get(client.authorize_url(None, resource=gateway.mcp_url)))
    assert missing["error"] == ["invalid_request"] and missing["state"] == ["st4te"]
    assert missing["iss"] == [gateway.url]
    plain = redirect_query(
        await browser.http.get(client.authorize_url(challenge, method="plain", resource=gateway.mcp_url))
    )
    assert plain["error"] == ["invalid_request"] and "S256" in plain["error_description"][0]
    code, verifier = await client.code(person, resource=gateway.mcp_url)
    no_verifier = await client.exchange(code, None)
    assert (no_verifier.status_code, no_verifier.json()["error"]) == (400, "invalid_request")
    code, verifier = await client.code(person, resource=gateway.mcp_url)
    wrong = await client.exchange(code, pkce_pair()[0])
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    burnt = await client.exchange(code, verifier)  # a failed attempt used the code up
    assert burnt.json()["error"] == "invalid_grant"


async def test_redirect_uris_must_match_exactly_except_loopback_ports(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway, redirect_uri="http://127.0.0.1:40000/cb")
    _verifier, challenge = pkce_pair()
    browser = Browser(person)
    for wrong in ("https://evil.example/cb", "http://127.0.0.1:40000/other", "http://127.0.0.1:40000/cb?x=1"):
        page = await browser.http.get(client.authorize_url(challenge, resource=gateway.mcp_url, redirect_uri=wrong))
        assert page.status_code == 400 and "location" not in page.headers  # never redirected to an unproven URI
    other_port = "http://127.0.0.1:51234/cb"
    verifier, challenge = pkce_pair()
    result = await Browser(person).code_for(
        client.authorize_url(challenge, resource=gateway.mcp_url, redirect_uri=other_port)
    )
    mismatch = await client.exchange(result.code, verifier, redirect_uri="http://127.0.0.1:40000/cb")
    assert mismatch.json()["error"] == "invalid_grant"
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        refused = await http.post("/oauth/register", json={"redirect_uris": ["http://app.example/cb"]})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_redirect_uri")


async def test_tokens_are_bound_to_their_resource(gateway: Gateway, upstream: Upstream) -> None:
    person = await new_person(gateway)
    conn = await add_connection(gateway, person.api_key, upstream)
    conn_url = f"{gateway.url}/mcp/{conn['id']}"
    client = await HandClient.register(gateway)
    for_connection = (await client.tokens(person, resource=conn_url))["access_token"]
    for_management = (await client.tokens(person, resource=gateway.mcp_url))["access_token"]
    assert status_with(conn_url, for_connection).status_code == 200
    assert status_with(gateway.mcp_url, for_management).status_code == 200
    wrong_place = status_with(gateway.mcp_url, for_connection)
    assert wrong_place.status_code == 401
    assert 'error="invalid_token"' in wrong_place.headers["www-authenticate"]
    assert status_with(conn_url, for_management).status_code == 401
    call_tool = httpx.post(
        f"{conn_url}/call-tool/echo", json={"text": "x"}, headers={"Authorization": f"Bearer {for_connection}"}
    )
    assert call_tool.status_code == 200, call_tool.text
    _verifier, challenge = pkce_pair()
    foreign = redirect_query(
        await Browser(person).http.get(client.authorize_url(challenge, resource="https://elsewhere.example/mcp"))
    )
    assert foreign["error"] == ["invalid_target"]
    code, verifier = await client.code(person, resource=gateway.mcp_url)
    switched = await client.exchange(code, verifier, resource=conn_url)
    assert switched.json()["error"] == "invalid_target"


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    first = await client.tokens(person, resource=gateway.mcp_url)
    rotated = await client.refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second: dict[str, Any] = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert status_with(gateway.mcp_url, second["access_token"]).status_code == 200
    reused = await client.refresh(first["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert status_with(gateway.mcp_url, second["access_token"]).status_code == 401
    assert (await client.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_revocation_ends_access_and_refresh(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    tokens = await client.tokens(person, resource=gateway.mcp_url)
    assert status_with(gateway.mcp_url, tokens["access_token"]).status_code == 200
    assert (await client.revoke(tokens["refresh_token"])).status_code == 200
    revoked = status_with(gateway.mcp_url, tokens["access_token"])
    assert revoked.status_code == 401 and "revoked" in revoked.text
    assert (await client.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await client.revoke("mgrt_unknown")).status_code == 200  # RFC 7009: unknown tokens are not an error
    other = await HandClient.register(gateway)
    kept = await client.tokens(person, resource=gateway.mcp_url)
    await other.revoke(kept["access_token"])  # another client cannot revoke it
    assert status_with(gateway.mcp_url, kept["access_token"]).status_code == 200
    await client.revoke(kept["access_token"])  # its own client can, with the access token
    assert status_with(gateway.mcp_url, kept["access_token"]).status_code == 401


async def test_scopes_narrow_a_token_to_the_listed_tools(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    tokens = await client.tokens(person, resource=gateway.mcp_url, scope="self:ORGANIZATION_LIST")
    assert tokens["scope"] == "self:ORGANIZATION_LIST"
    async with connect(gateway.mcp_url, tokens["access_token"]) as session:
        listed = await session.list_tools()
        assert [tool.name for tool in listed.tools] == ["ORGANIZATION_LIST"]
        await call(session, "ORGANIZATION_LIST", {})
        assert "API_KEY_CREATE" in await call_error(session, "API_KEY_CREATE", {"name": "escalate"})
    _verifier, challenge = pkce_pair()
    bad = redirect_query(
        await Browser(person).http.get(client.authorize_url(challenge, resource=gateway.mcp_url, scope="not-a-scope"))
    )
    assert bad["error"] == ["invalid_scope"]


async def test_consent_can_be_denied_and_forms_need_their_csrf_token(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    _verifier, challenge = pkce_pair()
    url = client.authorize_url(challenge, resource=gateway.mcp_url)
    denied = redirect_query(await Browser(person, decision="deny").authorize(url))
    assert denied["error"] == ["access_denied"] and denied["state"] == ["st4te"]
    browser = Browser(person)
    await browser.authorize(url)  # logged in now; the consent page is shown again below
    page = await browser.http.get(url)
    fields = forms_of(page.text).fields
    forged = await browser.http.post(
        f"{gateway.url}/oauth/authorize", data={**fields, "csrf_token": "forged", "decision": "allow"}
    )
    assert forged.status_code == 403 and "location" not in forged.headers
    assert page.headers["x-frame-options"] == "DENY"
    async with httpx.AsyncClient(base_url=gateway.url) as fresh:
        login = await fresh.get("/login")
        wrong = await fresh.post(
            "/login", data={**forms_of(login.text).fields, "email": person.email, "password": "nope-nope"}
        )
        assert (
            wrong.status_code == 401
            and "wrong" in wrong.text
            and "meshgate_session" not in wrong.headers.get("set-cookie", "")
        )
        no_csrf = await fresh.post("/login", data={"email": person.email, "password": person.password})
        assert no_csrf.status_code == 403


async def test_a_token_dies_with_its_organization(gateway: Gateway) -> None:
    owner = await new_person(gateway)
    client = await HandClient.register(gateway)
    tokens = await client.tokens(owner, resource=gateway.mcp_url)
    async with connect(gateway.mcp_url, tokens["access_token"]) as session:
        await call(session, "ORGANIZATION_LIST", {})
    deleted = rpc(
        gateway.mcp_url,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "ORGANIZATION_DELETE", "arguments": {"id": owner.organization_id}},
        },
        key=owner.api_key,
        headers={"MCP-Protocol-Version": "2025-11-25"},
    )
    assert deleted.json()["result"]["structuredContent"]["deleted"] is True, deleted.text
    with anyio.fail_after(10):
        while True:
            if status_with(gateway.mcp_url, tokens["access_token"]).status_code == 401:
                break
            await anyio.sleep(0.05)


async def test_an_admin_registers_a_confidential_client_that_must_authenticate(gateway: Gateway) -> None:
    person = await new_person(gateway)
    stranger = await new_person(gateway, org="Other")
    async with connect(gateway.mcp_url, person.api_key) as session:
        created = await call(
            session,
            "OAUTH_CLIENT_CREATE",
            {"name": "Desk App", "redirectUris": ["http://127.0.0.1:9/cb"], "confidential": True},
        )
        listed = await call(session, "OAUTH_CLIENT_LIST", {})
    secret = remember_secret(created["clientSecret"])
    assert [item["clientId"] for item in listed["items"]] == [created["clientId"]]
    assert "clientSecret" not in listed["items"][0]
    client = HandClient(gateway, created["clientId"], httpx.AsyncClient(base_url=gateway.url))
    verifier, challenge = pkce_pair()
    url = client.authorize_url(challenge, resource=gateway.mcp_url, redirect_uri="http://127.0.0.1:9/cb")
    browser = Browser(person)
    code = redirect_query(await browser.authorize(url))["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:9/cb",
        "code_verifier": verifier,
    }
    without = await client.http.post("/oauth/token", data={**form, "client_id": created["clientId"]})
    assert (without.status_code, without.json()["error"]) == (401, "invalid_client")
    wrong = await client.http.post("/oauth/token", data=form, auth=(created["clientId"], "mgcs_wrong"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    code = redirect_query(await browser.authorize(url))["code"][0]
    right = await client.http.post("/oauth/token", data={**form, "code": code}, auth=(created["clientId"], secret))
    assert right.status_code == 200, right.text
    remember_secret(right.json()["access_token"])
    remember_secret(right.json()["refresh_token"])
    async with connect(gateway.mcp_url, stranger.api_key) as session:
        assert "not found" in await call_error(session, "OAUTH_CLIENT_DELETE", {"clientId": created["clientId"]})
    async with connect(gateway.mcp_url, person.api_key) as session:
        assert (await call(session, "OAUTH_CLIENT_DELETE", {"clientId": created["clientId"]}))["deleted"] is True
