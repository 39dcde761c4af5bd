"""`meshgate connect URL`: MCP over stdio on one side, a meshgate endpoint over Streamable HTTP on the other.

The bridge relays JSON-RPC messages as bytes and never re-serialises them through SDK types (those drop
fields they do not know), so it is the same for both protocol generations: it only learns what the HTTP
side needs. Handshake era: the `Mcp-Session-Id` from the answer to `initialize` and the negotiated
version go on every later request, and after `notifications/initialized` a GET stream carries the
server's own requests and notifications. Stateless era: each request names its version in `_meta`, and
the bridge adds the `Mcp-Method`/`Mcp-Name` headers; `input_required` results and `subscriptions/listen`
streams are ordinary answers. Requests run concurrently (a long stream never blocks the next call);
notifications and responses to the server go out in the order the client wrote them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

import anyio
import anyio.abc
import httpx2
import orjson

from meshgate.jsonvalues import as_dict
from meshgate.protocol import PROTOCOL_VERSION_META, is_stateless, routing_headers
from meshgate.remote import oauth
from meshgate.remote.client import Authorizer, http_client
from meshgate.remote.credentials import CredentialStore, ServerLogin
from meshgate.remote.endpoints import Endpoint
from meshgate.remote.errors import RemoteError

INTERNAL_ERROR = -32603
PARSE_ERROR = -32700
DRAIN_SECONDS = 5.0  # after stdin closes, in-flight answers get this long to arrive
RECONNECT_SECONDS = 1.0


async def sse_messages(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The `data` of each server-sent event (a JSON-RPC message), as it arrives."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield "\n".join(data).encode()
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data).encode()


class StdioBridge:
    """Forwards each message read from the local client to `endpoint`, and every answer back."""

    def __init__(
        self,
        endpoint: Endpoint,
        authorizer: Authorizer,
        http: httpx2.AsyncClient,
        out: BinaryIO,
        log: Callable[[str], None],
    ) -> None:
        self._endpoint = endpoint
        self._auth = authorizer
        self._http = http
        self._out = out
        self._log = log
        self._write_lock = anyio.Lock()
        self._bearer: str | None = None
        self.session_id: str | None = None
        self.version: str | None = None
        self._initialize_id: Any = None
        self._listening = False
        self._pending = 0
        self._idle = anyio.Event()

    async def run(self, lines: AsyncIterator[bytes]) -> None:
        self._bearer = await anyio.to_thread.run_sync(self._auth.bearer)
        async with anyio.create_task_group() as requests, anyio.create_task_group() as background:
            async for line in lines:
                if not line.strip():
                    continue
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError as error:
                    await self._write_error(None, f"not a JSON-RPC message: {error}", PARSE_ERROR)
                    continue
                fields = as_dict(message)
                if "method" in fields and "id" in fields:
                    if fields["method"] == "initialize":
                        self._initialize_id = fields["id"]
                    requests.start_soon(self._request, line.strip(), message)
                else:
                    await self._forward(line.strip(), message)
                    if fields.get("method") == "notifications/initialized":
                        self._start_listening(background)
            with anyio.move_on_after(DRAIN_SECONDS):
                await self._drain()
            requests.cancel_scope.cancel()
            background.cancel_scope.cancel()
        await self._end_session()

    async def _request(self, raw: bytes, message: Any) -> None:
        self._pending += 1
        try:
            await self._forward(raw, message)
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def _drain(self) -> None:
        while self._pending:
            self._idle = anyio.Event()
            await self._idle.wait()

    def _headers(self, message: Any) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "authorization": f"Bearer {self._bearer}",
        }
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        fields = as_dict(message)
        params = fields.get("params")
        stamped = as_dict(as_dict(params).get("_meta")).get(PROTOCOL_VERSION_META)
        version = stamped if isinstance(stamped, str) else self.version
        if version is not None:
            headers["mcp-protocol-version"] = version
            method = fields.get("method")
            if is_stateless(version) and isinstance(method, str):
                headers.update(routing_headers(method, params))
        return headers

    async def _forward(self, raw: bytes, message: Any) -> None:
        fields = as_dict(message)
        request_id = fields.get("id") if "method" in fields else None
        reason = "the request could not be forwarded"
        try:
            for attempt in range(2):
                headers = self._headers(message)
                async with self._http.stream("POST", self._endpoint.url, content=raw, headers=headers) as response:
                    if response.status_code == 401 and attempt == 0:
                        fresh = await anyio.to_thread.run_sync(self._auth.after_refusal)
                        if fresh is not None:
                            self._bearer = fresh
                            continue
                    await self._relay(response, request_id, message)
                    return
        except httpx2.TransportError as error:
            reason = f"cannot reach {self._endpoint.url}: {error or type(error).__name__}"
        except RemoteError as error:
            reason = error.message
        self._log(f"meshgate connect: {reason}")
        if request_id is not None:
            await self._write_error(request_id, reason)

    async def _relay(self, response: httpx2.Response, request_id: Any, message: Any) -> None:
        if as_dict(message).get("method") == "initialize":
            self.session_id = response.headers.get("mcp-session-id") or self.session_id
        if response.status_code in (202, 204):
            return
        media = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if media == "text/event-stream" and response.status_code == 200:
            async for data in sse_messages(response):
                await self._write(data)
            return
        body = await response.aread()
        try:
            answer = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            answer = None
        fields = as_dict(answer)
        if isinstance(answer, list) or ("jsonrpc" in fields and (request_id is None or fields.get("id") == request_id)):
            await self._write(body)
        elif request_id is not None:
            await self._write_error(request_id, _refusal(response.status_code, as_dict(answer), body))

    async def _write(self, data: bytes) -> None:
        if b"\n" in data:  # stdio framing is one message per line
            data = orjson.dumps(orjson.loads(data))
        message = as_dict(orjson.loads(data))
        if self._initialize_id is not None and message.get("id") == self._initialize_id:
            version = as_dict(message.get("result")).get("protocolVersion")
            if isinstance(version, str):
                self.version = version
        async with self._write_lock:
            self._out.write(data + b"\n")
            self._out.flush()

    async def _write_error(self, request_id: Any, reason: str, code: int = INTERNAL_ERROR) -> None:
        error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": reason}}
        await self._write(orjson.dumps(error))

    def _start_listening(self, group: anyio.abc.TaskGroup) -> None:
        if self.session_id is not None and not self._listening:
            self._listening = True
            group.start_soon(self._listen)

    async def _listen(self) -> None:
        """The handshake era's GET stream: server requests and notifications outside any call."""
        while True:
            headers = {k: v for k, v in self._headers({}).items() if k != "content-type"}
            headers["accept"] = "text/event-stream"
            try:
                async with self._http.stream("GET", self._endpoint.url, headers=headers) as response:
                    if response.status_code != 200:
                        return  # 405: this endpoint has no stream; others: the session is gone
                    async for data in sse_messages(response):
                        await self._write(data)
            except httpx2.TransportError as error:
                self._log(f"meshgate connect: the event stream broke ({error}); reconnecting")
            await anyio.sleep(RECONNECT_SECONDS)

    async def _end_session(self) -> None:
        if self.session_id is None:
            return
        headers = {k: v for k, v in self._headers({}).items() if k != "content-type"}
        with anyio.move_on_after(5):
            with contextlib.suppress(httpx2.TransportError):  # the gateway expires idle sessions on its own
                await self._http.delete(self._endpoint.url, headers=headers)


def _refusal(status: int, answer: dict[str, Any], body: bytes) -> str:
    """A one-line reason for an HTTP answer that carries no JSON-RPC message (a 401, a proxy's error page)."""
    error = answer.get("error")
    reason = as_dict(error).get("message") or answer.get("error_description") or error or answer.get("message")
    text = str(reason) if reason else body[:200].decode(errors="replace").strip()
    if status == 401:
        return f"the gateway refused the credentials (HTTP 401: {text}); run `meshgate login` or pass --api-key"
    return f"the gateway answered HTTP {status}: {text}"


async def _stdin_lines() -> AsyncIterator[bytes]:
    stdin = anyio.wrap_file(sys.stdin.buffer)
    async for line in stdin:
        yield line


def run_bridge(
    endpoint: Endpoint,
    store: CredentialStore,
    *,
    api_key: str | None,
    open_browser: bool,
    show: Callable[[str], None],
) -> None:
    """Run until stdin closes. A missing login for the endpoint starts one in the browser (on stderr)."""
    login = None if api_key is not None else store.get(endpoint.base) or ServerLogin(url=endpoint.base)
    with http_client() as sync_http:

        def sign_in() -> Any:
            metadata = oauth.discover(sync_http, endpoint.base)
            assert login is not None  # noqa: S101  (only offered when no API key is given)
            if login.client_id is None:
                login.client_id = oauth.register_client(sync_http, metadata)
            return oauth.authorize(sync_http, endpoint, metadata, login.client_id, show=show, open_browser=open_browser)

        authorizer = Authorizer(sync_http, endpoint, store=store, login=login, api_key=api_key, sign_in=sign_in)

        async def main() -> None:
            timeout = httpx2.Timeout(30.0, read=None)
            async with httpx2.AsyncClient(timeout=timeout) as http:
                await StdioBridge(endpoint, authorizer, http, sys.stdout.buffer, show).run(_stdin_lines())

        anyio.run(main)
