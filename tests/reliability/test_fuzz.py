"""Hostile input: random and mutated JSON-RPC messages and tool arguments never crash the gateway.

Bounded for CI: a few hundred examples per endpoint against one `meshgate serve` process (SQLite) and a real
upstream. Every answer must be a well-formed HTTP answer that is not a 500, and afterwards that same process
must still be alive and serve health checks, management tools and proxied calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshgate.app import build_registry
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, create_connection, start_gateway

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
        # Stripped: an HTTP client cannot send edge whitespace in a header value (h11 refuses to).
        "mcp-method": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(str.strip),
        "mcp-session-id": st.text(alphabet="0123456789abcdef", max_size=40),
        "content-type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]),
    },
)


@dataclass
class FuzzedGateway:
    """The one gateway process every test in this module hits, and how many requests the fuzz tests sent it."""

    gateway: Gateway
    client: httpx.Client
    conn_id: str
    sent: int = 0

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        self.sent += 1
        return self.client.post(path, **kwargs)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[FuzzedGateway]:
    """Module-scoped on purpose: the health check at the end of this module must see the process the fuzzing hit."""
    tmp = tmp_path_factory.mktemp("gw-fuzz")
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp)
        try:
            owner = gateway.bootstrap("fuzz@example.com", org="Fuzz")
            conn_id = create_connection(gateway, owner.api_key, upstream).rsplit("/", 1)[1]
            headers = {"authorization": f"Bearer {owner.api_key}"}
            with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
                yield FuzzedGateway(gateway, client, conn_id)
        finally:
            code = gateway.stop()
            assert code == 0, f"gateway exited with {code} after fuzzing:\n{gateway.logs()[-3000:]}"


def _check(fuzzed: FuzzedGateway, path: str, body: bytes, headers: dict[str, str]) -> None:
    all_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream", **headers}
    response = fuzzed.post(path, content=body, headers=all_headers)
    assert response.status_code != 500, (response.status_code, body[:200], response.text[:300])
    if response.status_code not in (202, 204) and response.content:
        media = response.headers.get("content-type", "")
        assert media.startswith(("application/json", "text/event-stream")), (media, response.text[:200])


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=messages(), headers=HEADERS)
def test_management_endpoint_survives_hostile_messages(
    fuzzed: FuzzedGateway, body: bytes, headers: dict[str, str]
) -> None:
    _check(fuzzed, "/mcp", body, headers)


@FUZZ
@given(body=messages(), headers=HEADERS)
def test_proxy_endpoint_survives_hostile_messages(fuzzed: FuzzedGateway, body: bytes, headers: dict[str, str]) -> None:
    _check(fuzzed, f"/mcp/{fuzzed.conn_id}", body, headers)


@FUZZ
@given(tool=st.sampled_from(TOOLS), arguments=st.dictionaries(st.text(max_size=15), JSON, max_size=6))
def test_every_management_tool_answers_hostile_arguments_with_a_tool_result(
    fuzzed: FuzzedGateway, tool: str, arguments: dict[str, Any]
) -> None:
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    response = fuzzed.post("/mcp", json=body, headers={"accept": "application/json, text/event-stream"})
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    assert "result" in answer, answer  # a refusal or a failure is a tool result, not a protocol error
    if answer["result"].get("isError"):
        text = answer["result"]["content"][0]["text"]
        assert "\n" not in text and "Traceback" not in text


# Keep this test last in the module: it checks the process the tests above fuzzed.
def test_gateway_is_still_healthy_after_fuzzing(fuzzed: FuzzedGateway) -> None:
    if fuzzed.sent == 0:
        pytest.skip("run with the fuzz tests of this module: alone it would check a gateway nobody fuzzed")
    process = fuzzed.gateway.process
    assert process is not None and process.poll() is None, f"the fuzzed gateway died:\n{fuzzed.gateway.logs()[-3000:]}"
    # Short timeouts: a wedged gateway (event loop blocked, database pool exhausted) fails here instead of hanging.
    ready = fuzzed.client.get("/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    accept = {"accept": "application/json, text/event-stream"}
    listed = fuzzed.client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "COLLECTION_CONNECTIONS_LIST"}},
        headers=accept,
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["result"]["structuredContent"]["items"]] == [fuzzed.conn_id]
    echoed = fuzzed.client.post(f"/mcp/{fuzzed.conn_id}/call-tool/echo", json={"text": "still here"}, timeout=10)
    assert echoed.status_code == 200, echoed.text
    assert "still here" in echoed.text
