"""Every tool call, resource read and prompt get is audited, redacted and cut at 64 KiB."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import add_connection, new_owner, wait_for_logs
from meshgate.monitoring.redaction import STRING_PREVIEW
from support.gateway import Gateway, Upstream
from support.mcp_client import MODES, call, call_error, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXZhbHVl"
SECRETS = {
    "email": "alice.smith@example.org",  # (an email may appear in logs; the rest may not)
    "jwt": JWT,
    "key": "mg_abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "openai": "sk-proj-abcdefghijklmnop1234567890",
    "card": "4111 1111 1111 1111",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
}
for _name, _value in SECRETS.items():
    if _name != "email":
        remember_secret(_value)


@pytest.mark.parametrize("mode", MODES)
async def test_calls_reads_and_prompts_are_audited_with_caller_and_request(
    gateway: Gateway, upstream: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, mode) as client:
        await client.call_tool("add", {"a": 1, "b": 2})
        await client.call_tool("fail", {})
        await client.read_resource("memo://r")
        await client.get_prompt("greet", {"name": "Bo"})
        await client.list_tools()  # not audited
    logs = await wait_for_logs(gateway, owner.api_key, 4, connectionId=conn["id"])
    by_target = {log["toolName"]: log for log in logs}
    assert set(by_target) == {"add", "fail", "memo://r", "greet"}
    add = by_target["add"]
    assert add["method"] == "tools/call" and add["isError"] is False
    assert json.loads(add["input"]) == {"a": 1, "b": 2}
    assert json.loads(add["output"])["structuredContent"] == {"sum": 3.0}
    assert add["caller"] == {
        "type": "api_key",
        "userId": owner.user_id,
        "apiKeyId": add["caller"]["apiKeyId"],
        "clientId": None,
    }
    assert add["caller"]["apiKeyId"]
    assert add["userAgent"] and add["requestId"] and add["durationMs"] > 0
    assert add["protocolVersion"] == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert by_target["fail"]["isError"] is True and by_target["fail"]["errorMessage"] == "it failed on purpose"
    assert by_target["memo://r"]["method"] == "resources/read"
    assert by_target["greet"]["method"] == "prompts/get"


async def test_secrets_in_arguments_and_results_are_redacted(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    arguments = {
        **SECRETS,
        "password": "hunter2-is-the-password",
        "note": f"mail {SECRETS['email']} card {SECRETS['card']}",
    }
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        await client.call_tool("secret_echo", arguments)
    (log,) = await wait_for_logs(gateway, owner.api_key, 1, toolName="secret_echo")
    stored = log["input"] + log["output"]
    for value in [*SECRETS.values(), "hunter2-is-the-password"]:
        assert value not in stored, value
    assert "[EMAIL]" in stored and "[JWT]" in stored and "[CARD]" in stored and "[REDACTED]" in stored


@pytest.mark.finding(16)
async def test_an_upstream_echoing_meshgates_authorization_header_leaves_no_token_in_the_audit_log(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        result = await client.call_tool("headers_text", {})
    echoed = result.content[0].text  # type: ignore[union-attr]
    assert f"authorization: Bearer {upstream.token}" in echoed  # the upstream really echoed it
    (log,) = await wait_for_logs(gateway, owner.api_key, 1, toolName="headers_text")
    assert upstream.token not in log["output"]
    assert "authorization: [REDACTED]" in json.loads(log["output"])["content"][0]["text"]


@pytest.mark.finding(16)
async def test_passwords_pins_keys_and_private_keys_in_arguments_are_not_stored(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyu\n-----END RSA PRIVATE KEY-----"
    aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    arguments = {
        "pwd": "pwd-value-1",
        "pin": "4711",
        "otp": "987654",
        "key": "k" * 32,
        "monkey": "banana",
        "note": f"my password is hunter2 and the db is postgresql://app:s3cr3t-pw@db/x; aws {aws}",
        "deploy": pem,
    }
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        await client.call_tool("secret_echo", arguments)
    (log,) = await wait_for_logs(gateway, owner.api_key, 1, toolName="secret_echo")
    stored = log["input"] + log["output"]
    for value in ("pwd-value-1", "4711", "987654", "k" * 32, "hunter2", "s3cr3t-pw", aws, "MIIEpAIBAAKCAQEA"):
        assert value not in stored, value
    assert json.loads(log["input"])["monkey"] == "banana"
    assert "[PRIVATE_KEY]" in stored and "postgresql://app:[REDACTED]@db/x" in stored


async def test_large_payloads_are_cut_at_64_kib(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        result = await client.call_tool("echo", {"text": "z" * 200_000})
    assert len(result.content[0].text) == 200_000  # type: ignore[union-attr]  # the client gets everything
    (log,) = await wait_for_logs(gateway, owner.api_key, 1, toolName="echo")
    for field in ("input", "output"):  # a string keeps its first 8 KiB; a payload never passes 64 KiB
        assert len(log[field].encode()) <= 64 * 1024
        assert "z" * STRING_PREVIEW + "…[truncated]" in log[field]
        assert "z" * (STRING_PREVIEW + 1) not in log[field]


async def test_request_id_is_accepted_returned_and_stored(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    response = httpx.post(
        f"{gateway.url}/mcp/{conn['id']}/call-tool/add",
        json={"a": 1, "b": 1},
        headers={
            "authorization": f"Bearer {owner.api_key}",
            "x-request-id": "trace-me-123",
            "user-agent": "audit-test/1",
        },
    )
    assert response.headers["x-request-id"] == "trace-me-123"
    (log,) = await wait_for_logs(gateway, owner.api_key, 1, connectionId=conn["id"])
    assert log["requestId"] == "trace-me-123"
    assert log["userAgent"] == "audit-test/1"
    async with connect(gateway.mcp_url, owner.api_key) as client:
        assert (await call(client, "MONITORING_LOG_GET", {"id": log["id"]}))["requestId"] == "trace-me-123"


async def test_stats_report_totals_error_rate_latency_and_top_tools(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        for _ in range(3):
            await client.call_tool("add", {"a": 1, "b": 1})
        await client.call_tool("fail", {})
    await wait_for_logs(gateway, owner.api_key, 4, connectionId=conn["id"])
    async with connect(gateway.mcp_url, owner.api_key) as client:
        stats = await call(client, "MONITORING_STATS", {"connectionId": conn["id"]})
        errors_only = await call(client, "MONITORING_LOGS_LIST", {"connectionId": conn["id"], "isError": True})
        future = await call(client, "MONITORING_LOGS_LIST", {"startDate": "2999-01-01T00:00:00Z"})
        assert "startDate 'yesterday' is not an ISO 8601 time" in await call_error(
            client, "MONITORING_LOGS_LIST", {"startDate": "yesterday"}
        )
    assert stats["totalCalls"] == 4 and stats["errorCount"] == 1 and stats["errorRate"] == 0.25
    assert stats["latencyMs"]["p50"] <= stats["latencyMs"]["p95"] <= stats["latencyMs"]["p99"]
    assert stats["topTools"][0] == {"toolName": "add", "calls": 3, "errors": 0}
    assert [log["toolName"] for log in errors_only["items"]] == ["fail"]
    assert future["items"] == []


async def test_logs_filter_by_part_of_a_tool_name_in_any_case(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        await client.call_tool("add", {"a": 1, "b": 1})
        await client.call_tool("echo", {"text": "hi"})
        await client.call_tool("fail", {})
    await wait_for_logs(gateway, owner.api_key, 3, connectionId=conn["id"])

    async def names(part: str) -> list[str]:
        async with connect(gateway.mcp_url, owner.api_key) as client:
            listed = await call(client, "MONITORING_LOGS_LIST", {"connectionId": conn["id"], "toolNameContains": part})
        return sorted(log["toolName"] for log in listed["items"])

    assert await names("A") == ["add", "fail"]
    assert await names("DD") == ["add"]
    assert await names("%") == []  # a LIKE wildcard is matched as itself
    assert await names("_") == []
