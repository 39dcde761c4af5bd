"""Server-sent events: splitting a body into events and finding JSON-RPC messages in them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

_BLANK = re.compile(r"\s*\Z")  # matched against a block's span: nothing but white space


@dataclass(slots=True)
class Event:
    data: str
    event: str | None = None
    id: str | None = None
    retry: str | None = None

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        lines.extend(f"data: {line}" for line in self.data.split("\n"))
        return ("\n".join(lines) + "\n\n").encode()


def parse_events(body: bytes) -> Iterator[Event]:
    """Events of a complete SSE body (CRLF, LF and CR line ends)."""
    return _events(body.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n"))


def _events(text: str) -> Iterator[Event]:
    """Events of text with LF line ends, read line by line (an empty line ends an event; one of only white
    space is skipped). Lines are found with single-character searches and a value is the one copy made of
    it, so one 16 MiB event costs milliseconds, not the tenth of a second that splitting it did."""
    event, data, seen = Event(data=""), list[str](), False
    position, size = 0, len(text)
    while position <= size:
        line_end = text.find("\n", position)
        if line_end < 0:
            line_end = size
        if line_end == position:
            if seen:
                event.data = "\n".join(data)
                yield event
            event, data, seen = Event(data=""), [], False
        else:
            seen = seen or _BLANK.match(text, position, line_end) is None
            if not text.startswith(":", position, line_end):
                colon = text.find(":", position, line_end)
                name = text[position:line_end] if colon < 0 else text[position:colon]
                value_start = line_end if colon < 0 else colon + 1
                if text.startswith(" ", value_start, line_end):
                    value_start += 1
                if name == "data":
                    data.append(text[value_start:line_end])
                elif name in ("event", "id", "retry"):
                    setattr(event, name, text[value_start:line_end])
        position = line_end + 1
    if seen:
        event.data = "\n".join(data)
        yield event


def event_message(event: Event) -> dict[str, Any] | None:
    """The JSON-RPC message an SSE event carries, if its data is one (parsed straight from the text)."""
    if not event.data:
        return None
    try:
        message = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None  # pyright: ignore[reportUnknownVariableType]


def messages(body: bytes, content_type: str) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages of a response body, whether JSON or an SSE stream."""
    if content_type.startswith("text/event-stream"):
        for event in parse_events(body):
            if event.data:
                try:
                    message = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(message, dict):
                    yield message  # pyright: ignore[reportUnknownArgumentType]
        return
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(message, dict):
        yield message  # pyright: ignore[reportUnknownArgumentType]


def response_for(body: bytes, content_type: str, request_id: Any) -> dict[str, Any] | None:
    """The response message to `request_id` in a body, if there is one."""
    for message in messages(body, content_type):
        if message.get("id") == request_id and ("result" in message or "error" in message):
            return message
    return None


class EventReader:
    """Incremental SSE parsing for a stream that arrives in chunks; events may span chunks.

    Linear in the bytes received: each chunk's line ends are normalised once, only the new bytes (and the
    one before them) are searched for the end of an event, and an event over `max_event_bytes` is refused
    as soon as it grows past the limit. Text is decoded per complete event, so a UTF-8 character split
    between chunks stays whole."""

    def __init__(self, max_event_bytes: int = 16 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max = max_event_bytes
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[Event]:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            chunk, self._pending_cr = chunk[:-1], True  # may be the first half of a CRLF
        start = max(len(self._buffer) - 1, 0)
        self._buffer += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = self._buffer.rfind(b"\n\n", start)
        if end < 0:
            if len(self._buffer) > self._max:
                raise ValueError(f"an event is larger than {self._max} bytes")
            return []
        with memoryview(self._buffer) as view, view[:end] as head:
            complete = str(head, "utf-8", "replace")  # decoded in place: no copy of the bytes first
        del self._buffer[: end + 2]
        if len(self._buffer) > self._max:
            raise ValueError(f"an event is larger than {self._max} bytes")
        return list(_events(complete))  # line ends are LF already
