"""The connection registry: discovery on create and update, unreachable servers, listing, write-only secrets."""

from __future__ import annotations

import pytest

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream, free_port
from support.mcp_client import call, call_error, connect

pytestmark = pytest.mark.anyio


async def test_create_contacts_the_server_and_stores_its_info_and_tools(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, description="test server", metadata={"team": "x"})
    assert conn["status"] == "active"
    assert conn["server_info"]["name"] == "upstream"
    assert conn["instructions"] == "A test upstream."
    assert {"echo", "add"} <= {tool["name"] for tool in conn["tools"]}
    assert conn["metadata"] == {"team": "x"}
    assert conn["connection_token"] == {"set": True}
    assert upstream.token not in str(conn)


async def test_an_unreachable_server_is_saved_with_status_error_and_the_reason(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    async with connect(gateway.mcp_url, owner.api_key) as client:
        conn = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "Down", "connection_type": "HTTP", "connection_url": dead, "connect_timeout_ms": 2000}},
        )
        assert conn["status"] == "error"
        assert "unreachable" in conn["status_reason"]
        tested = await call(client, "CONNECTION_TEST", {"id": conn["id"]})
    assert tested["healthy"] is False and tested["latencyMs"] is None


async def test_wrong_upstream_credentials_are_reported_not_hidden(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, connection_token="wrong")
    assert conn["status"] == "error"
    assert "refused meshgate's credentials (HTTP 401)" in conn["status_reason"]


async def test_update_rechecks_the_server_and_keeps_secrets_write_only(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, connection_token="wrong")
    async with connect(gateway.mcp_url, owner.api_key) as client:
        fixed = await call(
            client,
            "COLLECTION_CONNECTIONS_UPDATE",
            {"id": conn["id"], "data": {"connection_token": upstream.token, "connection_headers": {"X-A": "secret-a"}}},
        )
        assert fixed["status"] == "active" and fixed["status_reason"] is None
        assert fixed["connection_headers"] == {"set": True, "names": ["X-A"]}
        tested = await call(client, "CONNECTION_TEST", {"id": conn["id"]})
        assert tested["healthy"] is True and tested["latencyMs"] > 0
        renamed = await call(client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"title": "Renamed"}})
        assert renamed["title"] == "Renamed" and renamed["connection_token"] == {"set": True}
        configured = await call(
            client, "CONNECTION_CONFIGURE", {"id": conn["id"], "state": {"apiKey": "cfg-secret"}, "scopes": ["a"]}
        )
        assert configured["configuration_state"] == {"set": True}
        assert configured["configuration_scopes"] == ["a"]
        cleared = await call(
            client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"connection_headers": None}}
        )
        assert cleared["connection_headers"] == {"set": False, "names": []}
        everything = str(await call(client, "COLLECTION_CONNECTIONS_LIST", {})) + str(
            await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
        )
    for secret in (upstream.token, "secret-a", "cfg-secret"):
        assert secret not in everything


async def test_an_update_keeps_header_values_given_as_null(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream, connection_headers={"X-A": "secret-a", "X-B": "b"})
    async with connect(gateway.mcp_url, owner.api_key) as client:
        refused = await call_error(
            client,
            "COLLECTION_CONNECTIONS_UPDATE",
            {"id": conn["id"], "data": {"connection_headers": {"X-A": None, "X-Unknown": None}}},
        )
        assert "connection_headers.X-Unknown: null keeps the stored value, but none is stored" in refused
        updated = await call(
            client,
            "COLLECTION_CONNECTIONS_UPDATE",
            {"id": conn["id"], "data": {"connection_headers": {"X-A": None, "X-C": "c"}}},
        )
        assert updated["connection_headers"] == {"set": True, "names": ["X-A", "X-C"]}
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as proxied:
        sent = (await proxied.call_tool("headers_text", {})).content[0].text  # type: ignore[union-attr]
    assert "x-a: secret-a" in sent and "x-c: c" in sent and "x-b" not in sent


async def test_list_filters_sorts_and_pages(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    for title in ("bravo", "alpha", "charlie"):
        await add_connection(gateway, owner.api_key, upstream, title=title)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        page = await call(
            client, "COLLECTION_CONNECTIONS_LIST", {"orderBy": [{"field": ["title"], "direction": "asc"}], "limit": 2}
        )
        assert [c["title"] for c in page["items"]] == ["alpha", "bravo"]
        assert page["totalCount"] == 3 and page["hasMore"] is True
        rest = await call(
            client,
            "COLLECTION_CONNECTIONS_LIST",
            {"orderBy": [{"field": ["title"], "direction": "asc"}], "limit": 2, "offset": 2},
        )
        assert [c["title"] for c in rest["items"]] == ["charlie"] and rest["hasMore"] is False
        where = {
            "operator": "or",
            "conditions": [
                {"field": ["title"], "operator": "eq", "value": "alpha"},
                {"field": ["title"], "operator": "contains", "value": "arl"},
            ],
        }
        found = await call(
            client,
            "COLLECTION_CONNECTIONS_LIST",
            {"where": where, "orderBy": [{"field": ["title"], "direction": "desc"}]},
        )
        assert [c["title"] for c in found["items"]] == ["charlie", "alpha"]
        assert "limit: Input should be less than or equal to 1000" in await call_error(
            client, "COLLECTION_CONNECTIONS_LIST", {"limit": 1001}
        )
        assert "field 'secrets' is not allowed" in await call_error(
            client, "COLLECTION_CONNECTIONS_LIST", {"where": {"field": ["secrets"], "operator": "eq", "value": "x"}}
        )
        assert "operator 'regex' is not allowed" in await call_error(
            client, "COLLECTION_CONNECTIONS_LIST", {"where": {"field": ["title"], "operator": "regex", "value": "x"}}
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"connection_type": "HTTP", "connection_url": "http://x/mcp"}, "data.title is required"),
        ({"title": "t", "connection_type": "HTTP"}, "connection_url is required"),
        ({"title": "t", "connection_type": "HTTP", "connection_url": "ftp://x"}, "must be an http:// or https:// URL"),
        (
            {"title": "t", "connection_type": "FTP", "connection_url": "http://x"},
            "connection_type: Input should be 'HTTP', 'SSE' or 'STDIO'",
        ),
        (
            {"title": "t", "connection_type": "STDIO", "connection_headers": {"command": "true"}},
            "need meshgate serve --local-mode",
        ),
        (
            {
                "title": "t",
                "connection_type": "HTTP",
                "connection_url": "http://x",
                "connection_headers": {"Host": "evil"},
            },
            "header 'Host' is set by meshgate",
        ),
        (
            {
                "title": "t",
                "connection_type": "HTTP",
                "connection_url": "http://x",
                "connection_headers": {"X-A": "a\r\nB: c"},
            },
            "without line breaks",
        ),
        (
            {"title": "t", "connection_type": "HTTP", "connection_url": "http://x", "call_timeout_ms": 5},
            "call_timeout_ms: Input should be greater than or equal to 1000",
        ),
    ],
)
async def test_bad_connection_data_is_refused_precisely(
    gateway: Gateway, data: dict[str, object], message: str
) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        reason = await call_error(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
        assert message in reason
        assert (await call(client, "COLLECTION_CONNECTIONS_LIST", {}))["totalCount"] == 0
