"""meshgate's upstream HTTP/1.1 client against small raw servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool
from support.gateway import free_port

pytestmark = pytest.mark.anyio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"


async def _serve(handler: Handler) -> AsyncIterator[Server]:
    info = Server()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", info.port)
    async with server:
        yield info


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await _read_request(reader)
        writer.write(_ok(b'{"ok":true}'))
        await writer.drain()


async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(_ok(b'{"ok":1}'))  # claims keep-alive, then goes away (an idle timeout on the server)
    await writer.drain()


async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    for part in (b"data: 1\n\n", b"data: 2\n\n"):
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
        await asyncio.sleep(0)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    await reader.read()


async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await _read_request(reader)
    await reader.read()


async def _request(pool: Pool, wait_s: float = 5) -> tuple[int, bytes]:
    response = await pool.request("POST", {"content-type": "application/json"}, b"{}", head_timeout=wait_s)
    try:
        return response.status, await response.read(1 << 20, idle_s=wait_s)
    finally:
        response.release()


async def test_keep_alive_connections_are_reused() -> None:
    async for server in _serve(keep_alive):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        results = [await _request(pool) for _ in range(5)]
        pool.close()
        assert results == [(200, b'{"ok":true}')] * 5
        assert server.connections == 1


async def test_a_connection_the_server_dropped_is_replaced_transparently() -> None:
    async for server in _serve(one_then_close):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        first = await _request(pool)
        # The server has closed its side (or is about to): either way the pooled connection is not reused.
        second = await _request(pool)
        pool.close()
        assert first == second == (200, b'{"ok":1}')
        assert server.connections == 2


async def test_chunked_streams_arrive_in_order() -> None:
    async for server in _serve(chunked):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        response = await pool.request("POST", {}, b"{}", head_timeout=5)
        chunks = [chunk async for chunk in response.iter_chunks(5)]
        response.release()
        pool.close()
        assert response.headers["content-type"] == "text/event-stream"
        assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n"


async def test_silence_is_a_timeout_and_a_closed_port_an_error() -> None:
    async for server in _serve(silent):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        with pytest.raises(HttpTimeout):
            await _request(pool, wait_s=0.3)
        pool.close()
    closed = Pool(f"http://127.0.0.1:{free_port()}/mcp", ssl_context=None, connect_timeout=5)
    with pytest.raises(HttpError):
        await _request(closed)


def _answers_once_then(second_answer: bytes) -> Handler:
    """Answers the first request on each connection; the second gets `second_answer` and the connection closes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_ok(b'{"ok":1}'))
        await writer.drain()
        await _read_request(reader)  # the pooled connection is reused ...
        writer.write(second_answer)  # ... and dies (after these bytes, if any)
        await writer.drain()

    return handler


async def test_a_reused_connection_that_dies_before_any_answer_byte_is_retried_on_a_fresh_one() -> None:
    async for server in _serve(_answers_once_then(b"")):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        first = await _request(pool)
        second = await _request(pool)
        pool.close()
        assert first == second == (200, b'{"ok":1}')
        assert server.connections == 2


async def test_a_reused_connection_that_dies_in_the_middle_of_an_answer_is_not_retried() -> None:
    async for server in _serve(_answers_once_then(b"HTTP/1.1 200 OK\r\ncontent-")):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        await _request(pool)
        with pytest.raises(HttpError, match="closed the connection"):
            await _request(pool)  # the server may have acted on it: not sent twice
        pool.close()
        assert server.connections == 1


async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An event stream that never ends: one small event about every millisecond."""
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    part = b"data: more\n\n"
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
        await asyncio.sleep(0.001)


async def test_an_enclosing_timeout_ends_a_chatty_stream() -> None:
    async for server in _serve(chatty):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        response = await pool.request("POST", {}, b"{}", head_timeout=5)
        chunks = 0
        with anyio.fail_after(10), pytest.raises(TimeoutError):  # anyio's scope is the "never stalls" bound
            async with asyncio.timeout(0.5):  # what the proxy wraps around its pump
                async for _chunk in response.iter_chunks(5):
                    chunks += 1
        response.release()
        pool.close()
        assert chunks > 10  # it was streaming all along


async def test_a_chatty_stream_ends_at_its_deadline() -> None:
    async for server in _serve(chatty):
        pool = Pool(server.url, ssl_context=None, connect_timeout=5)
        response = await pool.request("POST", {}, b"{}", head_timeout=5)
        deadline = asyncio.get_running_loop().time() + 0.5
        with anyio.fail_after(10), pytest.raises(HttpTimeout, match="within the call timeout"):
            async for _chunk in response.iter_chunks(5, deadline=deadline):
                pass
        response.release()
        pool.close()
