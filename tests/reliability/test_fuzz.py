"""Hostile input: random and mutated JSON-RPC messages and tool arguments never crash the gateway.

Bounded for CI: a few hundred examples per endpoint against an in-process gateway and a real upstream.
Every answer must be a well-formed HTTP answer that is not a 500, and the gateway must stay healthy.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshgate.app import build_registry
from support.gateway import Upstream
from support.inprocess import InProcessGateway, in_process_gateway

pytestmark = pytest.mark.anyio

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
METHODS = st.sampled_from(
    [
        "initialize",
        "tools/list",
        "tools/call",
        "resources/read",
        "prompts/get",
        "ping",
        "server/discover",
        "notifications/initialized",
        "completion/complete",
        "logging/setLevel",
        "nope/nope",
    ]
) | st.text(max_size=30)
TOOLS = sorted(spec.name for spec in build_registry())


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return json.dumps(draw(JSON)).encode()
    message: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "1.0", 2])), "method": draw(METHODS)}
    if draw(st.booleans()):
        message["id"] = draw(st.one_of(st.integers(), st.text(max_size=20), st.none(), JSON))
    if draw(st.booleans()):
        message["params"] = draw(JSON)
    if kind == 3:
        message["params"] = {"name": draw(st.sampled_from(TOOLS) | st.text(max_size=20)), "arguments": draw(JSON)}
    if kind == 4:
        return ("[" * draw(st.integers(1, 5000)) + "]" * draw(st.integers(0, 5000))).encode()
    return json.dumps(message).encode()


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "mcp-protocol-version": st.sampled_from(["2025-03-26", "2025-11-25", "2026-07-28", "1999-01-01", ""]),
        "mcp-method": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
        "mcp-session-id": st.text(alphabet="0123456789abcdef", max_size=40),
        "content-type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]),
    },
)


@pytest.fixture
async def gateway(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    async with in_process_gateway(tmp_path, upstream) as running:
        yield running


async def _check(gateway: InProcessGateway, path: str, body: bytes, headers: dict[str, str]) -> None:
    all_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream", **headers}
    response = await gateway.client.post(path, content=body, headers=all_headers)
    assert response.status_code != 500, (response.status_code, body[:200], response.text[:300])
    if response.status_code not in (202, 204) and response.content:
        media = response.headers.get("content-type", "")
        assert media.startswith(("application/json", "text/event-stream")), (media, response.text[:200])


FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ
@given(body=messages(), headers=HEADERS)
async def test_management_endpoint_survives_hostile_messages(
    gateway: InProcessGateway, body: bytes, headers: dict[str, str]
) -> None:
    await _check(gateway, "/mcp", body, headers)


@FUZZ
@given(body=messages(), headers=HEADERS)
async def test_proxy_endpoint_survives_hostile_messages(
    gateway: InProcessGateway, body: bytes, headers: dict[str, str]
) -> None:
    await _check(gateway, f"/mcp/{gateway.conn_id}", body, headers)


@FUZZ
@given(tool=st.sampled_from(TOOLS), arguments=st.dictionaries(st.text(max_size=15), JSON, max_size=6))
async def test_every_management_tool_answers_hostile_arguments_with_a_tool_result(
    gateway: InProcessGateway, tool: str, arguments: dict[str, Any]
) -> None:
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    response = await gateway.client.post("/mcp", json=body, headers={"accept": "application/json, text/event-stream"})
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    assert "result" in answer, answer  # a refusal or a failure is a tool result, not a protocol error
    if answer["result"].get("isError"):
        text = answer["result"]["content"][0]["text"]
        assert "\n" not in text and "Traceback" not in text


async def test_gateway_is_still_healthy_after_fuzzing(gateway: InProcessGateway) -> None:
    assert (await gateway.client.get("/health/ready")).status_code == 200
