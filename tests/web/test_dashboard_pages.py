"""Dashboard details checked over plain HTTP (no browser): CSRF, secrets, who sees what."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import key_for_user
from support.audit import seed_history
from support.browser import add_member
from support.gateway import Gateway, Upstream, connection_request, manage, rpc
from support.oauth import forms_of, logged_in, new_person
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio


async def test_a_visit_without_a_session_goes_to_the_login_page(web_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=web_gateway.url) as http:
        answer = await http.get("/app/anything/connections")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/app/anything/connections"


async def test_forms_without_a_genuine_csrf_token_are_refused(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Csrf Org")
    async with logged_in(web_gateway, person.email, person.password) as http:
        home = await http.get("/app", follow_redirects=True)
        root = str(home.url).rsplit("/", 1)[0]
        keys_page = await http.get(f"{root}/keys")
        token = forms_of(keys_page.text).fields["csrf_token"]
        for fields in ({"name": "forged"}, {"name": "forged", "csrf_token": "not-the-token"}):
            refused = await http.post(f"{root}/keys", data=fields)
            assert refused.status_code == 403 and "Form expired" in refused.text
        assert "forged" not in (await http.get(f"{root}/keys")).text
        made = await http.post(f"{root}/keys", data={"name": "genuine", "csrf_token": token})
        assert made.status_code == 303
        assert "genuine" in (await http.get(made.headers["location"])).text


@dataclass(frozen=True)
class Create:
    """A form that makes something with a secret: the page that shows it, its input, the tool that lists."""

    posted_to: str
    fields: dict[str, str]
    shown_on: str
    input_id: str
    listing: str


CREATES = [
    pytest.param(Create("/keys", {"name": "shown-once"}, "/keys", "new-key-value", "API_KEY_LIST"), id="api-key"),
    pytest.param(Create("/invitations", {"role": "member"}, "/members", "invite-link", "INVITATION_LIST"), id="invite"),
    pytest.param(
        Create(
            "/members", {"email": "new@example.com", "role": "member"}, "/members", "invite-link", "INVITATION_LIST"
        ),
        id="member",
    ),
]


@pytest.mark.parametrize("create", CREATES)
async def test_a_create_redirects_and_its_secret_is_shown_once_outside_the_url(
    web_gateway: Gateway, create: Create
) -> None:
    person = await new_person(web_gateway, "Once Org")
    before = len(manage(web_gateway, person.api_key, create.listing)["items"])
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        form = await http.get(root + create.shown_on)
        made = await http.post(
            root + create.posted_to, data={**create.fields, "csrf_token": forms_of(form.text).fields["csrf_token"]}
        )
        assert made.status_code == 303 and made.headers["cache-control"] == "no-store"
        assert made.headers["location"] == root.removeprefix(web_gateway.url) + create.shown_on

        shown = await http.get(made.headers["location"])
        found = re.search(rf'id="{create.input_id}" type="text" readonly value="([^"]+)"', shown.text)
        assert shown.status_code == 200 and found is not None, shown.text
        secret = remember_secret(found.group(1))
        assert secret not in made.headers["location"] and secret not in made.headers["set-cookie"]
        assert shown.headers["cache-control"] == "no-store"
        assert 'meshgate_once=""' in shown.headers["set-cookie"] and "Max-Age=0" in shown.headers["set-cookie"]

        reloaded = await http.get(made.headers["location"])
        assert reloaded.status_code == 200 and secret not in reloaded.text and create.input_id not in reloaded.text
    assert len(manage(web_gateway, person.api_key, create.listing)["items"]) == before + 1


async def test_a_forged_shown_once_cookie_shows_the_page_without_a_secret(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Forged Once Org")
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        http.cookies.set("meshgate_once", "mgo1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        page = await http.get(f"{root}/keys")
    assert page.status_code == 200 and "new-key-value" not in page.text
    assert "Max-Age=0" in page.headers["set-cookie"]


async def test_connection_secrets_never_reach_a_page(web_gateway: Gateway, upstream: Upstream) -> None:
    person = await new_person(web_gateway, "Secret Org")
    header_value = "header-secret-value-77"
    request = connection_request(upstream)
    request["params"]["arguments"]["data"]["connection_headers"] = {"X-Extra": header_value}
    connection = rpc(web_gateway.mcp_url, request, key=person.api_key).json()["result"]["structuredContent"]
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        for path in ("/connections", f"/connections/{connection['id']}", f"/connections/{connection['id']}/edit"):
            page = await http.get(root + path)
            assert page.status_code == 200
            assert upstream.token not in page.text and header_value not in page.text, path
        edit = await http.get(f"{root}/connections/{connection['id']}/edit")
        assert "X-Extra" in edit.text  # the page says which headers are set, not their values
        refused = await http.post(
            f"{root}/connections/{connection['id']}/edit",
            data={
                **forms_of(edit.text).fields,
                "title": "",
                "connection_url": upstream.url,
                "connection_token": "typed-but-refused-token",
            },
        )
        assert refused.status_code == 400 and "title" in refused.text
        assert "typed-but-refused-token" not in refused.text


async def test_a_member_is_refused_admin_pages_and_does_not_see_their_links(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Roles Org")
    member = await add_member(web_gateway, person.organization_id)
    async with logged_in(web_gateway, member.email, member.password) as http:
        home = await http.get("/app", follow_redirects=True)
        assert home.status_code == 200
        root = str(home.url).rsplit("/", 1)[0]
        for path in ("/members", "/keys", "/audit", "/roles", "/settings"):
            assert f'href="{root.split(web_gateway.url)[-1]}{path}"' not in home.text
            page = await http.get(root + path)
            assert page.status_code == 403 and "Not allowed" in page.text, path
        fields = forms_of(home.text).fields
        add = await http.post(f"{root}/members", data={**fields, "email": "x@example.com", "role": "admin"})
        assert add.status_code == 403


async def test_another_organization_answers_not_found(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Mine")
    other = await new_person(web_gateway, "Theirs")
    async with logged_in(web_gateway, person.email, person.password) as http:
        slug = str((await http.get("/app", follow_redirects=True)).url).split("/app/")[1].split("/")[0]
        async with logged_in(web_gateway, other.email, other.password) as theirs:
            their_slug = str((await theirs.get("/app", follow_redirects=True)).url).split("/app/")[1].split("/")[0]
        assert slug != their_slug
        answer = await http.get(f"/app/{their_slug}/connections")
        assert answer.status_code == 404


async def test_pages_allow_only_the_gateways_own_script(web_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=web_gateway.url) as http:
        script = await http.get("/app/static/dashboard.js")
        login = await http.get("/login")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    policy = login.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy


def _invite(gateway: Gateway, key: str, **arguments: str) -> dict[str, str]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "INVITATION_CREATE", "arguments": arguments},
    }
    answer = rpc(gateway.mcp_url, body, key=key).json()["result"]
    assert not answer.get("isError"), answer
    return answer["structuredContent"]


async def test_an_invitation_for_one_address_refuses_anyone_else(web_gateway: Gateway) -> None:
    owner = await new_person(web_gateway, "Host Org")
    guest = await new_person(web_gateway, "Guest Org")
    named = _invite(web_gateway, owner.api_key, role="member", email="someone-else@example.com")
    anyone = _invite(web_gateway, owner.api_key, role="member")
    async with logged_in(web_gateway, guest.email, guest.password) as http:
        path = named["url"].removeprefix(web_gateway.url)
        page = await http.get(path)
        refused = await http.post(path, data=forms_of(page.text).fields)
        assert refused.status_code == 403 and "someone-else@example.com" in refused.text
        path = anyone["url"].removeprefix(web_gateway.url)
        page = await http.get(path)
        joined = await http.post(path, data=forms_of(page.text).fields)
        assert joined.status_code == 303 and joined.headers["location"].endswith("/connections?notice=joined")
        dashboard = await http.get(joined.headers["location"])
        assert "Host Org" in dashboard.text and "Guest Org" in dashboard.text  # both in the organization switcher
        listing = await http.get(dashboard.url.path.replace("/connections", "/members"))
        assert listing.status_code == 403  # joined as member: no member list


async def test_a_member_cannot_invite_into_a_role_above_their_own(web_gateway: Gateway) -> None:
    owner = await new_person(web_gateway, "Ladder Org")
    member = await add_member(web_gateway, owner.organization_id, role="member")
    key = await key_for_user(web_gateway, owner.organization_id, member.user_id)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "INVITATION_CREATE", "arguments": {"role": "admin"}},
    }
    answer = rpc(web_gateway.mcp_url, body, key=key).json()["result"]
    assert answer["isError"] and "INVITATION_CREATE" in answer["content"][0]["text"]
    listed = _invite(web_gateway, owner.api_key, role="admin")
    body["params"] = {"name": "INVITATION_LIST", "arguments": {}}
    items = rpc(web_gateway.mcp_url, body, key=owner.api_key).json()["result"]["structuredContent"]["items"]
    assert [item["id"] for item in items] == [listed["id"]]
    assert all("url" not in item and "token" not in item for item in items)


async def _root(http: httpx.AsyncClient) -> str:
    return str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]


async def test_settings_give_the_member_role_a_connection_tool(web_gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_person(web_gateway, "Settings Org")
    connection = rpc(web_gateway.mcp_url, connection_request(upstream), key=owner.api_key).json()["result"][
        "structuredContent"
    ]
    member = await add_member(web_gateway, owner.organization_id)
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/settings")
        fields = forms_of(page.text).fields
        ticks = ["self|COLLECTION_CONNECTIONS_LIST", "self|COLLECTION_CONNECTIONS_GET", f"{connection['id']}|echo"]
        saved = await http.post(f"{root}/settings/members", data={"csrf_token": fields["csrf_token"], "perm": ticks})
        assert saved.status_code == 303 and saved.headers["location"].endswith("/settings?notice=settings-saved")
        again = await http.get(f"{root}/settings")
        assert f'value="{connection["id"]}|echo" checked' in again.text
    async with logged_in(web_gateway, member.email, member.password) as http:
        root = await _root(http)
        tool_page = await http.get(f"{root}/connections/{connection['id']}/tools/echo")
        assert tool_page.status_code == 200
        token = forms_of(tool_page.text).fields["csrf_token"]
        called = await http.post(
            f"{root}/connections/{connection['id']}/tools/echo", data={"csrf_token": token, "arg.text": "via settings"}
        )
        assert called.status_code == 200 and "Result" in called.text and "via settings" in called.text
        refused = await http.post(f"{root}/connections/{connection['id']}/tools/add", data={"csrf_token": token})
        assert f"{connection['id']}:add" in refused.text


async def test_a_connection_is_renamed_and_deleted_from_its_pages(web_gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_person(web_gateway, "Edit Org")
    connection = rpc(web_gateway.mcp_url, connection_request(upstream), key=owner.api_key).json()["result"][
        "structuredContent"
    ]
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        edit = await http.get(f"{root}/connections/{connection['id']}/edit")
        fields = {**forms_of(edit.text).fields, "title": "Renamed server"}
        saved = await http.post(f"{root}/connections/{connection['id']}/edit", data=fields)
        assert saved.status_code == 303
        detail = await http.get(saved.headers["location"])
        assert "Renamed server" in detail.text and "Connection saved." in detail.text
        test = await http.post(f"{root}/connections/{connection['id']}/test", data={"csrf_token": fields["csrf_token"]})
        assert "Healthy" in test.text  # the stored token was kept: the edit form sent none
        deleted = await http.post(
            f"{root}/connections/{connection['id']}/delete", data={"csrf_token": fields["csrf_token"]}
        )
        assert deleted.status_code == 303
        assert (await http.get(f"{root}/connections/{connection['id']}")).status_code == 404


async def test_connect_a_client_shows_this_gateways_urls_and_no_key(web_gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_person(web_gateway, "Client Org")
    connection = rpc(web_gateway.mcp_url, connection_request(upstream), key=owner.api_key).json()["result"][
        "structuredContent"
    ]
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/connect", params={"connection": connection["id"]})
    assert f"{web_gateway.url}/mcp/{connection['id']}" in page.text
    assert "YOUR_API_KEY" in page.text and owner.api_key not in page.text
    for client in ("Claude Desktop", "Cursor", "MCP Python SDK", "MCP TypeScript SDK"):
        assert client in page.text


async def test_a_bad_audit_filter_is_explained_next_to_the_filters(web_gateway: Gateway) -> None:
    owner = await new_person(web_gateway, "Filter Org")
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/audit", params={"from": "yesterday"})
    assert page.status_code == 400
    assert "from: &#39;yesterday&#39; is not a time like 2026-01-31T12:00" in page.text
    assert 'value="yesterday"' in page.text


async def test_a_new_organization_from_settings_appears_in_the_switcher(web_gateway: Gateway) -> None:
    owner = await new_person(web_gateway, "First Org")
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        settings = await http.get(f"{root}/settings")
        token = forms_of(settings.text).fields["csrf_token"]
        made = await http.post(f"{root}/organizations", data={"csrf_token": token, "name": "Second Org"})
        assert made.status_code == 303 and "/app/second-org" in made.headers["location"]
        second = await http.get(made.headers["location"])
        assert second.status_code == 200
        assert 'aria-current="true">Second Org' in second.text and "First Org" in second.text
        empty = await http.post(f"{root}/organizations", data={"csrf_token": token, "name": " "})
        assert empty.status_code == 400 and "must not be empty" in empty.text


async def test_virtual_mcp_pages_refuse_a_member_without_permission(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Virtual Org")
    made = rpc(web_gateway.mcp_url, _virtual_request("Desk"), key=person.api_key).json()["result"]
    member = await add_member(web_gateway, person.organization_id)
    async with logged_in(web_gateway, member.email, member.password) as http:
        home = await http.get("/app", follow_redirects=True)
        root = str(home.url).rsplit("/", 1)[0]
        assert f'href="{root.split(web_gateway.url)[-1]}/virtual"' not in home.text
        virtual_id = made["structuredContent"]["id"]
        for path in ("/virtual", "/virtual/new", f"/virtual/{virtual_id}", f"/virtual/{virtual_id}/edit"):
            page = await http.get(root + path)
            assert page.status_code == 403 and "Not allowed" in page.text, path
        fields = forms_of(home.text).fields  # a genuine CSRF token: the refusal is the permission's
        created = await http.post(f"{root}/virtual", data={**fields, "title": "Mine"})
        deleted = await http.post(f"{root}/virtual/{virtual_id}/delete", data=fields)
        assert created.status_code == 403 and deleted.status_code == 403
    listed = rpc(web_gateway.mcp_url, _virtual_list(), key=person.api_key).json()["result"]["structuredContent"]
    assert [item["title"] for item in listed["items"]] == ["Desk"]


async def test_virtual_mcp_forms_without_a_genuine_csrf_token_are_refused(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Virtual Csrf Org")
    made = rpc(web_gateway.mcp_url, _virtual_request("Kept"), key=person.api_key).json()["result"]
    virtual_id = made["structuredContent"]["id"]
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        for path, fields in (
            ("/virtual", {"title": "forged"}),
            (f"/virtual/{virtual_id}/edit", {"title": "forged", "csrf_token": "not-the-token"}),
            (f"/virtual/{virtual_id}/delete", {"csrf_token": ""}),
        ):
            refused = await http.post(root + path, data=fields)
            assert refused.status_code == 403 and "Form expired" in refused.text, path
        listing = await http.get(f"{root}/virtual")
        assert "Kept" in listing.text and "forged" not in listing.text


def _virtual_request(title: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "COLLECTION_VIRTUAL_MCP_CREATE", "arguments": {"data": {"title": title}}},
    }


def _virtual_list() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "COLLECTION_VIRTUAL_MCP_LIST", "arguments": {}},
    }


async def test_saving_a_virtual_mcp_form_keeps_what_the_form_does_not_show(
    web_gateway: Gateway, upstream: Upstream
) -> None:
    person = await new_person(web_gateway, "Virtual Keep Org")
    connection = rpc(web_gateway.mcp_url, connection_request(upstream), key=person.api_key).json()["result"]
    connection_id = connection["structuredContent"]["id"]
    member = {
        "connection_id": connection_id,
        "selected_tools": ["echo", "retired_tool"],
        "selected_prompts": ["greet"],
        "selected_resources": ["file:///readme"],
        "tool_overrides": {"retired_tool": {"name": "old_name"}},
    }
    request = _virtual_request("Keeper")
    request["params"]["arguments"]["data"]["connections"] = [member]
    virtual_id = rpc(web_gateway.mcp_url, request, key=person.api_key).json()["result"]["structuredContent"]["id"]
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        edit = await http.get(f"{root}/virtual/{virtual_id}/edit")
        assert 'value="echo" checked' in edit.text and 'value="add">' in edit.text
        fields = {
            "csrf_token": forms_of(edit.text).fields["csrf_token"],
            "title": "Keeper",
            "connection": connection_id,
            f"mode:{connection_id}": "some",
            f"tool:{connection_id}": ["echo", "add"],
            f"name:{connection_id}:echo": "say",
            f"description:{connection_id}:add": "",
        }
        saved = await http.post(f"{root}/virtual/{virtual_id}/edit", data=fields)
        assert saved.status_code == 303 and saved.headers["location"].endswith("notice=virtual-updated")
        detail = await http.get(saved.headers["location"])
        assert "<code>say</code>" in detail.text and upstream.token not in detail.text
    get = {**_virtual_list(), "params": {"name": "COLLECTION_VIRTUAL_MCP_GET", "arguments": {"id": virtual_id}}}
    stored = rpc(web_gateway.mcp_url, get, key=person.api_key).json()["result"]["structuredContent"]["connections"][0]
    assert stored["selected_tools"] == ["add", "echo", "retired_tool"]
    assert stored["selected_prompts"] == ["greet"] and stored["selected_resources"] == ["file:///readme"]
    assert stored["tool_overrides"] == {"retired_tool": {"name": "old_name"}, "echo": {"name": "say"}}


async def test_a_form_with_too_many_fields_gets_a_readable_refusal(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Many Fields Org")
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        token = forms_of((await http.get(f"{root}/virtual/new")).text).fields["csrf_token"]
        fields = {"csrf_token": token, "title": "Big", **{f"f{n}": "" for n in range(4000)}}
        refused = await http.post(f"{root}/virtual", data=fields)
        assert refused.status_code == 400 and "more than 4000 fields" in refused.text


async def test_the_audit_filter_tells_connections_with_the_same_title_apart(
    web_gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_person(web_gateway, "Twins Org")
    ids = []
    for _ in range(2):
        made = rpc(web_gateway.mcp_url, connection_request(upstream, "Twin"), key=owner.api_key).json()
        ids.append(made["result"]["structuredContent"]["id"])
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/audit")
    for connection_id in ids:
        assert f'<option value="{connection_id}">Twin ({connection_id[:8]})</option>' in page.text


async def test_audit_charts_span_the_calls_when_no_period_is_chosen(web_gateway: Gateway, upstream: Upstream) -> None:
    """Traffic that stopped three days ago is charted over its own span, not as an empty last 24 hours."""
    owner = await new_person(web_gateway, "Old Traffic Org")
    made = rpc(web_gateway.mcp_url, connection_request(upstream, "Old"), key=owner.api_key).json()
    connection_id = made["result"]["structuredContent"]["id"]
    await seed_history(
        web_gateway, owner.organization_id, connection_id, owner.user_id, hours=6, per_hour=2, ago=timedelta(days=3)
    )
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/audit")
    period = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d) to (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", page.text)
    assert period is not None, page.text
    start, end = (datetime.fromisoformat(f"{value}+00:00") for value in period.groups())
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    assert start < end <= three_days_ago + timedelta(minutes=5)
    assert end - start >= timedelta(hours=5)


async def test_the_keys_page_says_whose_each_key_is_and_narrows_one_without_escalation(web_gateway: Gateway) -> None:
    owner = await new_person(web_gateway, "Key Map Org")
    member = await add_member(web_gateway, owner.organization_id)
    member_key = await key_for_user(web_gateway, owner.organization_id, member.user_id)
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = await _root(http)
        page = await http.get(f"{root}/keys")
        assert f"{owner.email} (you, owner)" in page.text and f"{member.email} (member)" in page.text
        keys = manage(web_gateway, owner.api_key, "API_KEY_LIST")["items"]
        key_id = next(k["id"] for k in keys if k["userId"] == member.user_id)
        edit = await http.get(f"{root}/keys/{key_id}")
        assert edit.status_code == 200 and member.email in edit.text and "Same as the owner&#39;s role" in edit.text
        token = forms_of(edit.text).fields["csrf_token"]
        saved = await http.post(
            f"{root}/keys/{key_id}", data={"csrf_token": token, "perm": ["self|API_KEY_LIST", "self|ORGANIZATION_LIST"]}
        )
        assert saved.status_code == 303 and saved.headers["location"].endswith("/keys?notice=key-updated")
    narrowed = next(k for k in manage(web_gateway, owner.api_key, "API_KEY_LIST")["items"] if k["id"] == key_id)
    assert narrowed["permissions"] == {"self": ["API_KEY_LIST", "ORGANIZATION_LIST"]}
    refused = rpc(
        web_gateway.mcp_url,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "COLLECTION_CONNECTIONS_LIST"}},
        key=member_key,
    ).json()
    assert "error" in refused or refused["result"].get("isError"), refused

    async with logged_in(web_gateway, member.email, member.password) as http:
        root = await _root(http)
        edit = await http.get(f"{root}/keys/{key_id}")
        token = forms_of(edit.text).fields["csrf_token"]
        wider = await http.post(
            f"{root}/keys/{key_id}", data={"csrf_token": token, "perm": ["self|ORGANIZATION_MEMBER_UPDATE_ROLE"]}
        )
    assert wider.status_code == 403 and 'role="alert"' in wider.text
    unchanged = next(k for k in manage(web_gateway, owner.api_key, "API_KEY_LIST")["items"] if k["id"] == key_id)
    assert unchanged["permissions"] == {"self": ["API_KEY_LIST", "ORGANIZATION_LIST"]}
