"""An MCP client authorized through the consent page in Chromium shows up under "Authorized apps", and
revoking it there ends its refresh token and its access token at once (issue 22, point 12)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser, Route, expect

from conftest import add_connection, new_member
from support.browser import log_in, run_async, shot
from support.gateway import Gateway, Upstream, manage, rpc
from support.oauth import REDIRECT_URI, new_person, pkce_pair
from support.secrets import remember_secret

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def _register(gateway: Gateway) -> str:
    answer = httpx.post(
        f"{gateway.url}/oauth/register",
        json={
            "client_name": "Desk client",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["client_id"])


def _token(gateway: Gateway, client_id: str, **values: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/oauth/token", data={"client_id": client_id, **values})


def test_an_authorized_app_is_listed_and_revoking_it_ends_its_tokens(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    person = run_async(new_person, web_gateway, "Home Org")
    team = run_async(new_person, web_gateway, "Team Org")
    run_async(new_member, web_gateway, team.organization_id, "admin", user_id=person.user_id)
    connection = run_async(add_connection, web_gateway, team.api_key, upstream, title="Team wiki")
    team_slug = manage(web_gateway, team.api_key, "ORGANIZATION_GET")["slug"]
    resource = f"{web_gateway.url}/mcp/{connection['id']}"
    client_id = _register(web_gateway)
    verifier, challenge = pkce_pair()
    authorize = httpx.URL(
        f"{web_gateway.url}/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource,
            "state": "s1",
        },
    )

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    returned: list[str] = []

    def back_in_the_client(route: Route) -> None:
        returned.append(route.request.url)
        route.fulfill(status=200, body="back in the client")

    context.route(REDIRECT_URI + "*", back_in_the_client)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, web_gateway, person.email, person.password)

    # The consent page names the connection and its organization, and offers no other organization.
    page.goto(str(authorize))
    expect(page.get_by_role("heading", name="Allow Desk client?")).to_be_visible()
    expect(page.locator("strong.target")).to_have_text("Team wiki")
    expect(page.get_by_text("Organization: Team Org")).to_be_visible()
    expect(page.get_by_role("combobox")).to_have_count(0)
    assert connection["id"] not in page.inner_text("body")
    shot(page, "17-consent-connection")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("back in the client")).to_be_visible()
    code = parse_qs(urlsplit(returned[0]).query)["code"][0]
    tokens = _token(
        web_gateway,
        client_id,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    ).json()
    access, refresh = remember_secret(tokens["access_token"]), remember_secret(tokens["refresh_token"])
    assert rpc(resource, INITIALIZE, key=access).status_code == 200

    # The app is listed in the connection's organization, not in the person's other one.
    page.goto(f"{web_gateway.url}/app/{team_slug}/connections")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Authorized apps").click()
    row = page.get_by_role("row").filter(has_text="Desk client")
    expect(row).to_contain_text("unverified name")
    expect(row).to_contain_text("connection Team wiki")
    expect(row).to_contain_text("127.0.0.1")
    shot(page, "18-authorized-apps")
    page.get_by_role("button", name="Revoke Desk client").click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked.")
    expect(page.get_by_text("You have not authorized any app in this organization.")).to_be_visible()
    assert "/apps?notice=app-revoked" in page.url  # post/redirect/get: reloading revokes nothing twice
    context.close()

    refused = _token(web_gateway, client_id, grant_type="refresh_token", refresh_token=refresh)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert rpc(resource, INITIALIZE, key=access).status_code == 401
