"""The audit writer: the hot path only appends to an in-memory queue; a background task redacts and
writes batches. Stopping drains the queue, so a graceful shutdown loses no record.

The queue is bounded by entries and by the bytes of the answers it holds (captured bodies reach 4 MiB), so
a burst of large results cannot grow memory without bound; what does not fit is dropped and counted."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.connections.upstream.sse import response_for
from meshgate.db.database import Database
from meshgate.db.tables import monitoring_logs
from meshgate.jsonvalues import as_dict, as_list
from meshgate.monitoring.models import AuditEntry
from meshgate.monitoring.redaction import cut, payload, redact_text
from meshgate.protocol import escaped_name, readable_tool_name

log = logging.getLogger(__name__)


# Told of each written batch in its transaction (entries with their stored rows): the tool-call events.
WrittenHook = Callable[[AsyncSession, Sequence[tuple[AuditEntry, Mapping[str, Any]]]], Awaitable[None]]


class AuditWriter:
    """Batches audit entries into the database off the request path."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        max_queue: int = 100_000,
        max_queue_bytes: int = 256 * 1024 * 1024,
        on_written: WrittenHook | None = None,
    ) -> None:
        self._db = db
        self._on_written = on_written
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(maxsize=max_queue)
        self._max_bytes = max_queue_bytes
        self.queued_bytes = 0
        self._in_flight = 0  # entries taken off the queue and not yet committed
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.written = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def record(self, entry: AuditEntry) -> None:
        """Queue an entry; never blocks. A full queue drops the entry and counts it."""
        size = _size(entry)
        fits = self.queued_bytes + size <= self._max_bytes
        if fits:
            try:
                self._queue.put_nowait(entry)
            except asyncio.QueueFull:
                fits = False
        if not fits:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit queue full: %d record(s) dropped so far", self.dropped)
            return
        self.queued_bytes += size

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout_s: float = 60.0) -> None:
        """Write everything still queued, then stop.

        The writer is asked to finish, not cancelled: cancelling it between taking a batch off the
        queue and committing it is exactly how records get lost.
        """
        self._stopping = True
        if self._task is not None:
            try:
                async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancel on 3.11
                    await self._task
            except TimeoutError:
                lost = self.depth + self._in_flight  # what was queued, and the batch being written when it stopped
                log.error("audit writer did not drain within %.0f s; %d record(s) lost", timeout_s, lost)  # noqa: TRY400
            self._task = None

    def _take(self, limit: int) -> list[AuditEntry]:
        batch: list[AuditEntry] = []
        while len(batch) < limit and not self._queue.empty():
            entry = self._queue.get_nowait()
            self.queued_bytes -= _size(entry)
            batch.append(entry)
        return batch

    async def _run(self) -> None:
        while not (self._stopping and self._queue.empty()):
            if self._queue.empty():
                await asyncio.sleep(self._interval)
                continue
            if not self._stopping and self._queue.qsize() < self._batch_size:
                await asyncio.sleep(self._interval)  # let a batch gather
            batch = self._take(self._batch_size)
            self._in_flight = len(batch)
            try:
                await self._write(batch)
            except Exception:
                log.exception("could not write %d audit record(s); retrying in 1 s", len(batch))
                self._in_flight = 0  # back on the queue: counted there
                for entry in batch:
                    self.record(entry)
                await asyncio.sleep(1)
            else:
                self._in_flight = 0  # (cancelled mid-write, it stays: `stop` reports those as lost)

    async def _write(self, batch: list[AuditEntry]) -> None:
        if not batch:
            return
        rows: list[dict[str, Any]] = []
        for index, entry in enumerate(batch):
            rows.append(row(entry))
            if index % 50 == 49:
                await asyncio.sleep(0)  # redaction is CPU work: let proxied calls run in between
        async with self._db.transaction() as session:
            await session.execute(insert(monitoring_logs), rows)
            if self._on_written is not None:
                await self._on_written(session, list(zip(batch, rows, strict=True)))
        self.written += len(rows)


def _size(entry: AuditEntry) -> int:
    return 0 if entry.response_body is None else len(entry.response_body)


def row(entry: AuditEntry) -> dict[str, Any]:
    """The stored form of an entry: the response found and read, everything redacted and cut."""
    is_error = bool(entry.is_error)
    error_message = entry.error_message
    output: str | None = None
    if entry.response_body is not None:
        response = response_for(entry.response_body, entry.response_content_type, entry.message_id)
        if response is None:
            text = entry.response_body[:4096].decode("utf-8", errors="replace")
            output = cut(redact_text(text))
            if entry.is_error is None and not entry.response_truncated:
                is_error = True
                error_message = error_message or "no JSON-RPC response from upstream"
        elif "error" in response:
            is_error = True
            error = as_dict(response["error"])
            error_message = redact_text(str(error.get("message", "error")))[:2000]
            output = payload(response["error"])
        else:
            result = response.get("result")
            output = payload(result)
            if as_dict(result).get("isError") is True:
                is_error = True
                error_message = error_message or _first_text(as_dict(result))
    return {
        "id": str(uuid.uuid4()),
        "organization_id": entry.organization_id,
        "connection_id": entry.connection_id,
        "virtual_mcp_id": entry.virtual_mcp_id,
        "method": entry.method[:64],
        "tool_name": _target(entry),
        "caller_type": entry.caller_type,
        "user_id": entry.user_id,
        "api_key_id": entry.api_key_id,
        "client_id": entry.client_id,
        "user_agent": None if entry.user_agent is None else entry.user_agent[:512],
        "request_id": None if entry.request_id is None else entry.request_id[:200],
        "protocol_version": None if entry.protocol_version is None else entry.protocol_version[:32],
        "input": payload(entry.params),
        "output": output,
        "is_error": is_error,
        "error_message": None if error_message is None else redact_text(error_message)[:2000],
        "duration_ms": entry.duration_ms,
        "created_at": entry.started_at,
        "tokens_in": entry.tokens_in,
        "tokens_out": entry.tokens_out,
        "cost_usd": entry.cost_usd,
    }


def _target(entry: AuditEntry) -> str | None:
    """The tool, resource or prompt a record names; a tool name that could be misread is stored escaped."""
    name = entry.tool_name
    if name is None:
        return None
    if entry.method == "tools/call" and not readable_tool_name(name):
        return escaped_name(name, 200)[:255]
    return name[:255]


def _first_text(result: dict[str, Any]) -> str | None:
    for item in as_list(result.get("content")):
        content = as_dict(item)
        if content.get("type") == "text":
            return str(content.get("text", ""))[:2000]
    return None
