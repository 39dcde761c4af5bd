"""Structured logs: JSON lines with request, organization and trace ids; readable lines in a terminal."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from conftest import add_connection, new_owner
from meshgate.observability import context
from meshgate.observability.logs import JsonFormatter, RequestContextFilter, TextFormatter
from support.gateway import Gateway, Upstream

pytestmark = pytest.mark.anyio


async def test_gateway_logs_are_json_lines_carrying_the_request_context(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    response = httpx.post(
        f"{gateway.url}/mcp/{conn['id']}/call-tool/add",
        json={"a": 40, "b": 2},
        headers={"authorization": f"Bearer {owner.api_key}", "x-request-id": "log-req-7f3e"},
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in gateway.logs().splitlines() if line.strip()]  # every line is JSON
    mine = [entry for entry in lines if entry.get("request_id") == "log-req-7f3e"]
    assert any("proxied tools/call" in entry["message"] for entry in mine)
    for entry in mine:
        assert entry["organization_id"] == owner.organization_id
        assert len(entry["trace_id"]) == 32 and len(entry["span_id"]) == 16
        assert {"time", "level", "logger", "message"} <= set(entry)


def _record() -> logging.LogRecord:
    record = logging.LogRecord("meshgate.test", logging.WARNING, __file__, 1, "upstream %s failed", ("Docs",), None)
    RequestContextFilter().filter(record)
    return record


def test_formatters_include_the_request_context() -> None:
    token_id = context.request_id.set("req-1")
    token_org = context.organization_id.set("org-1")
    try:
        text = TextFormatter().format(_record())
        entry = json.loads(JsonFormatter().format(_record()))
    finally:
        context.request_id.reset(token_id)
        context.organization_id.reset(token_org)
    assert "WARNING" in text and "upstream Docs failed" in text and "request_id=req-1" in text
    assert entry["message"] == "upstream Docs failed"
    assert entry["request_id"] == "req-1" and entry["organization_id"] == "org-1"
