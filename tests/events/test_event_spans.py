"""Event bus observability: a publish span in the publisher's trace, delivery spans linked to it, the trace
context carried with the event (CloudEvents distributed tracing), and the bus's metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from meshgate.events.worker import EventWorker
from meshgate.runtime import Runtime
from support.events import MCP, bus, tool, upstream_tool
from support.gateway import Upstream
from support.inprocess import InProcessGateway

pytestmark = pytest.mark.anyio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@asynccontextmanager
async def traced_bus(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> AsyncIterator[tuple[InProcessGateway, EventWorker, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()

    def attach(runtime: Runtime) -> None:
        runtime.tracing.add_processor(SimpleSpanProcessor(exporter))

    env = {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    async with bus(tmp_path, subscriber, tmp_db, env=env, before_start=attach) as (gateway, worker, _clock):
        yield gateway, worker, exporter


async def publish(gateway: InProcessGateway, arguments: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "EVENT_PUBLISH", "arguments": arguments},
    }
    answer = await gateway.client.post(
        "/mcp", json=message, headers={**MCP, "authorization": f"Bearer {gateway.key}", **headers}
    )
    result = answer.json()["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


async def test_a_published_event_is_traced_from_its_publisher_to_its_delivery(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with traced_bus(tmp_path, subscriber, tmp_db) as (gateway, worker, exporter):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.created", "connectionId": gateway.conn_id})
        exporter.clear()
        published = await publish(gateway, {"type": "order.created", "subject": "o-1"}, {"traceparent": CALLER})

        [sent] = named(exporter, "send order.created")
        assert sent.kind == SpanKind.PRODUCER
        trace_id, span_id = hex_ids(sent)
        assert trace_id == TRACE_ID  # in the publisher's trace
        assert sent.attributes is not None
        assert sent.attributes["messaging.message.id"] == published["id"]
        assert sent.attributes["cloudevents.event_type"] == "order.created"

        assert await worker.run_once() == 1
        [processed] = named(exporter, "process events")
        assert processed.kind == SpanKind.CONSUMER
        assert processed.parent is not None and f"{processed.parent.span_id:016x}" == span_id
        assert hex_ids(processed)[0] == TRACE_ID
        assert [f"{link.context.span_id:016x}" for link in processed.links] == [span_id]
        assert processed.attributes is not None
        assert (processed.attributes["meshgate.delivered"], processed.attributes["meshgate.delivery.to"]) == (
            1,
            "connection",
        )

        [[event]] = (await upstream_tool(gateway, "received", {}))["batches"]
        assert event["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"  # the subscriber can continue the trace


async def test_a_batch_from_several_traces_links_each_publish_span(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with traced_bus(tmp_path, subscriber, tmp_db) as (gateway, worker, exporter):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.*", "connectionId": gateway.conn_id})
        exporter.clear()
        other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        await publish(gateway, {"type": "order.created"}, {"traceparent": CALLER})
        await publish(gateway, {"type": "order.paid"}, {"traceparent": other})
        publishes = {hex_ids(span)[1] for span in exporter.get_finished_spans() if span.name.startswith("send ")}
        assert {hex_ids(s)[0] for s in exporter.get_finished_spans() if s.name.startswith("send ")} == {
            TRACE_ID,
            other[3:35],
        }

        assert await worker.run_once() == 2
        [processed] = named(exporter, "process events")
        assert processed.parent is None  # a root of its own: the batch belongs to no one trace
        assert {f"{link.context.span_id:016x}" for link in processed.links} == publishes
        assert processed.attributes is not None
        assert processed.attributes["messaging.batch.message_count"] == 2


async def test_with_tracing_off_an_event_passes_its_publishers_trace_context_on_unchanged(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db, env={"OTEL_SDK_DISABLED": "true"}) as (gateway, worker, _clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.*", "connectionId": gateway.conn_id})
        await publish(gateway, {"type": "order.created"}, {"traceparent": CALLER})
        await publish(gateway, {"type": "order.paid"}, {})
        assert await worker.run_once() == 2
        [batch] = (await upstream_tool(gateway, "received", {}))["batches"]
        # The caller's trace goes on: its span, or the SDK's request span when another gateway in this test
        # process installed the global tracer provider (then an untraced publish has that span's context).
        contexts = {event["type"]: event.get("traceparent") or "" for event in batch}
        assert contexts["order.created"][3:35] == TRACE_ID
        assert contexts["order.paid"][3:35] != TRACE_ID
