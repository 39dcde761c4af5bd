"""Traces: the span tree of a proxied call, debug sampling, trace context in and out, OTLP export."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from meshgate.runtime import Runtime
from support.databases import fresh_database
from support.gateway import Upstream, free_port, start_gateway
from support.inprocess import in_process_gateway

pytestmark = pytest.mark.anyio
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class InProcess:
    """A gateway app in this process (so spans can be read from memory), with a connection to `upstream`."""

    def __init__(self, client: httpx.AsyncClient, exporter: InMemorySpanExporter, conn_id: str, key: str) -> None:
        self.client = client
        self.exporter = exporter
        self.conn_id = conn_id
        self.key = key

    async def call(
        self, tool: str, arguments: dict[str, Any], headers: dict[str, str] | None = None, query: str = ""
    ) -> httpx.Response:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": tool,
                "arguments": arguments,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        }
        all_headers = {
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": "tools/call",
            "mcp-name": tool,
            "accept": "application/json, text/event-stream",
            **(headers or {}),
        }
        return await self.client.post(f"/mcp/{self.conn_id}{query}", json=body, headers=all_headers)


async def _in_process(tmp_path: Path, upstream: Upstream, sampler: str, arg: str) -> AsyncIterator[InProcess]:
    exporter = InMemorySpanExporter()
    env = {"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}

    def attach(runtime: Runtime) -> None:
        runtime.tracing.add_processor(SimpleSpanProcessor(exporter))

    async with in_process_gateway(tmp_path, upstream, env, before_start=attach) as gateway:
        exporter.clear()
        yield InProcess(gateway.client, exporter, gateway.conn_id, gateway.key)


@pytest.fixture
async def always(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async for gateway in _in_process(tmp_path, upstream, "always_on", "1"):
        yield gateway


@pytest.fixture
async def never(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async for gateway in _in_process(tmp_path, upstream, "parentbased_traceidratio", "0"):
        yield gateway


def _context(span: ReadableSpan) -> SpanContext:
    assert span.context is not None  # a finished span always has one; the SDK types it optional
    return span.context


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


async def test_span_tree_of_a_proxied_call(always: InProcess) -> None:
    response = await always.call("add", {"a": 1, "b": 2})
    assert response.status_code == 200
    spans = always.exporter.get_finished_spans()
    named = _by_name(spans)
    server = named["POST /mcp/{connection_id}"]
    auth = named["meshgate.authenticate"]
    upstream_call = named["mcp.upstream tools/call"]
    assert server.parent is None
    assert auth.parent is not None and auth.parent.span_id == _context(server).span_id
    assert upstream_call.parent is not None and upstream_call.parent.span_id == _context(server).span_id
    db_spans = [s for s in spans if s.name.startswith("db.query")]
    assert db_spans, "the first call loads the key and the connection from the database"
    assert all(_context(s).trace_id == _context(server).trace_id for s in spans)
    attributes = server.attributes or {}
    assert attributes["gen_ai.tool.name"] == "add"
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["mcp.protocol.version"] == "2026-07-28"
    assert attributes["meshgate.caller.type"] == "api_key"
    assert attributes["meshgate.organization"]
    assert attributes["meshgate.connection"] == always.conn_id
    for span in spans:  # no credential and no argument value in any attribute
        for value in (span.attributes or {}).values():
            assert always.key not in str(value)
            assert str(value) not in ("1", "2")


async def test_upstream_receives_trace_context_in_headers_and_meta(always: InProcess) -> None:
    response = await always.call("echo", {"text": "t"})
    received_meta = response.json()["result"]["structuredContent"]["receivedMeta"]
    upstream_span = _by_name(always.exporter.get_finished_spans())["mcp.upstream tools/call"]
    trace_id = format(_context(upstream_span).trace_id, "032x")
    span_id = format(_context(upstream_span).span_id, "016x")
    version, meta_trace, meta_span, flags = received_meta["traceparent"].split("-")
    assert (version, meta_trace, meta_span) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1 == 1  # sampled
    requests = (await always.call("headers", {})).json()["result"]["structuredContent"]["requests"]
    trace = format(_context(_by_name(always.exporter.get_finished_spans())["mcp.upstream tools/call"]).trace_id, "032x")
    # The upstream is shared: another test's gateway may have sent it a request (closing its session) in between,
    # so look for this call's request among the last ones rather than taking the very last.
    assert any(seen.get("traceparent", "").split("-")[1:2] == [trace] for seen in requests), requests


async def test_client_trace_context_is_continued(never: InProcess) -> None:
    parent = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"
    await never.call("add", {"a": 1, "b": 1}, headers={"traceparent": parent})
    spans = never.exporter.get_finished_spans()
    server = _by_name(spans)["POST /mcp/{connection_id}"]
    assert format(_context(server).trace_id, "032x") == CLIENT_TRACE
    assert server.parent is not None and format(server.parent.span_id, "016x") == "00f067aa0ba902b7"


async def test_ratio_zero_samples_nothing_but_a_debug_request(never: InProcess) -> None:
    plain = await never.call("add", {"a": 1, "b": 1})
    assert plain.status_code == 200 and "x-trace-debug-id" not in plain.headers
    assert never.exporter.get_finished_spans() == ()
    headers = (await never.call("headers", {})).json()["result"]["structuredContent"]["requests"][-1]
    assert int(headers["traceparent"].split("-")[3], 16) & 1 == 0  # context still flows, unsampled
    meta = (await never.call("echo", {"text": "m"})).json()["result"]["structuredContent"]["receivedMeta"]
    assert int(meta["traceparent"].split("-")[3], 16) & 1 == 0  # ... in _meta too, for a 2026-era request

    debug = await never.call("add", {"a": 2, "b": 2}, headers={"x-trace-debug-id": "dbg-42"})
    assert debug.headers["x-trace-debug-id"] == "dbg-42"
    server = _by_name(never.exporter.get_finished_spans())["POST /mcp/{connection_id}"]
    assert (server.attributes or {})["meshgate.debug_id"] == "dbg-42"

    never.exporter.clear()
    by_query = await never.call("add", {"a": 3, "b": 3}, query="?__d=1")
    assert by_query.headers["x-trace-debug-id"] == "1"
    assert "POST /mcp/{connection_id}" in _by_name(never.exporter.get_finished_spans())


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Receiver.bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (http.server's signature)
        pass


def test_spans_are_exported_over_otlp_http(tmp_path: Path, upstream: Upstream) -> None:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with fresh_database("sqlite", tmp_path) as url:
            gw = start_gateway(
                url,
                tmp_path,
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
                OTEL_TRACES_SAMPLER="always_on",
            )
            owner = gw.bootstrap("otlp@example.com")
            response = httpx.get(f"{gw.url}/mcp/not-a-connection", headers={"authorization": f"Bearer {owner.api_key}"})
            assert response.status_code == 404
            assert gw.stop() == 0  # shutdown flushes the batch processor
    finally:
        server.shutdown()
    names: set[str] = set()
    for body in _Receiver.bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "meshgate"
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert "GET /mcp/{connection_id}" in names
    assert "meshgate.authenticate" in names
