"""`/metrics` in Prometheus text format, parsed by prometheus_client, after known traffic."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families

from conftest import add_connection, new_member, new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, start_gateway
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio


def _samples(gateway: Gateway, token: str | None = None) -> dict[str, list[tuple[dict[str, str], float]]]:
    token = token or gateway.env.get("MESHGATE_METRICS_TOKEN")
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    response = httpx.get(f"{gateway.url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return series


def _value(series: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matching = [value for found, value in series.get(name, []) if all(found.get(k) == v for k, v in labels.items())]
    assert matching, f"no {name} with {labels}"
    return sum(matching)


async def test_metrics_after_known_traffic(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    role = f"r{uuid.uuid4().hex[:6]}"
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ROLE_CREATE", {"name": role, "permissions": {conn["id"]: ["add"]}})
    member_key = (await new_member(gateway, owner.organization_id, role)).api_key
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, "2026-07-28") as client:
        for n in range(3):
            await client.call_tool("add", {"a": n, "b": 1})
        with pytest.raises(MCPError):  # the upstream knows no such tool; its name folds into "other"
            await client.call_tool(f"made-up-{uuid.uuid4().hex}", {})
    async with connect(f"{gateway.url}/mcp/{conn['id']}", member_key, "2026-07-28") as client:
        await client.call_tool("echo", {"text": "refused"})

    series = _samples(gateway)
    org, connection = owner.organization_id, conn["id"]
    labels = {"organization": org, "connection": connection, "method": "tools/call"}
    assert _value(series, "meshgate_proxy_requests_total", tool="add", **labels) == 3
    assert _value(series, "meshgate_proxy_request_duration_seconds_count", tool="add", **labels) == 3
    assert _value(series, "meshgate_proxy_request_duration_seconds_sum", tool="add", **labels) > 0
    assert _value(series, "meshgate_proxy_requests_total", tool="other", **labels) == 1
    assert _value(series, "meshgate_proxy_errors_total", tool="echo", kind="permission_denied", **labels) == 1
    assert not [s for s in series["meshgate_proxy_requests_total"] if s[0]["tool"].startswith("made-up")]
    assert _value(series, "meshgate_upstream_circuit_state", organization=org, connection=connection) == 0
    assert _value(series, "meshgate_upstream_consecutive_failures", organization=org, connection=connection) == 0
    assert _value(series, "db_query_duration_seconds_count", operation="SELECT") > 0
    assert _value(series, "meshgate_http_requests_total", route="/mcp", status="200") >= 3
    assert "meshgate_audit_queue_depth" in series and "meshgate_audit_dropped" in series
    assert "meshgate_open_streams" in series and "meshgate_upstream_clients" in series
    assert _value(series, "meshgate_build_info") == 1


def test_metrics_can_require_a_bearer_token(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path, MESHGATE_METRICS_TOKEN="scrape-secret-123")
        try:
            assert httpx.get(f"{gw.url}/metrics").status_code == 401
            assert httpx.get(f"{gw.url}/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
            assert "meshgate_build_info" in _samples(gw, "scrape-secret-123")
        finally:
            assert gw.stop() == 0


@pytest.mark.finding(12)
def test_metrics_are_closed_unless_a_token_is_set_or_they_are_opened_on_purpose(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        closed = start_gateway(url, tmp_path, "closed", MESHGATE_METRICS_TOKEN="")
        try:
            refused = httpx.get(f"{closed.url}/metrics")
            assert refused.status_code == 401
            assert "MESHGATE_METRICS_TOKEN" in refused.text and "MESHGATE_METRICS_OPEN" in refused.text
            assert "meshgate_" not in refused.text
        finally:
            assert closed.stop() == 0
    with fresh_database("sqlite", tmp_path) as url:
        opened = start_gateway(url, tmp_path, "open", MESHGATE_METRICS_TOKEN="", MESHGATE_METRICS_OPEN="1")
        try:
            assert "meshgate_build_info" in httpx.get(f"{opened.url}/metrics").text
        finally:
            assert opened.stop() == 0


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path, MESHGATE_METRICS="off", OTEL_SDK_DISABLED="true")
        try:
            assert httpx.get(f"{gw.url}/metrics").status_code == 404
        finally:
            assert gw.stop() == 0
