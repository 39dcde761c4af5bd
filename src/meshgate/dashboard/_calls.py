""" "Try it": call a connection's tool as the logged-in person, through the proxy's own REST path.

The call goes through `ProxyEndpoint` in-process, so the permission decision, OAuth credentials,
the mesh token and the audit record are exactly those of `POST /mcp/{id}/call-tool/{tool}`. The
proxy admits bearer credentials; here the credential is a one-time handle to the visitor's principal,
known only inside this process and gone after one use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import Message

from meshgate.access import Principal
from meshgate.errors import Unauthenticated
from meshgate.http.guard import Admission, OriginPolicy
from meshgate.jsonvalues import as_dict
from meshgate.proxy.routes import ProxyEndpoint
from meshgate.runtime import Runtime

_HOST = "dashboard.meshgate.internal"


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What a tool call answered: the result (content, structuredContent, isError) or a gateway error."""

    status: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def is_error(self) -> bool:
        return self.error is not None or bool(self.result and self.result.get("isError"))


class ToolCaller:
    def __init__(self, runtime: Runtime) -> None:
        self._waiting: dict[str, Principal] = {}
        admission = Admission(
            authenticate=self._redeem,
            policy=OriginPolicy(hosts=(_HOST,), origins=()),
            max_body_bytes=runtime.settings.max_body_bytes,
            limiter=runtime.limiter,
            public_url=runtime.settings.public_url,
        )
        self._proxy = ProxyEndpoint(runtime, admission)

    async def _redeem(self, handle: str) -> Principal:
        principal = self._waiting.pop(handle, None)
        if principal is None:
            raise Unauthenticated("the dashboard call expired")
        return principal

    async def call(self, principal: Principal, connection_id: str, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        handle = secrets.token_urlsafe(24)
        self._waiting[handle] = principal
        body = orjson.dumps(arguments)
        path = f"/mcp/{connection_id}/call-tool/{tool}"
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "client": ("127.0.0.1", 0),
            "server": (_HOST, 80),
            "headers": [
                (b"host", _HOST.encode()),
                (b"authorization", f"Bearer {handle}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"user-agent", b"meshgate dashboard"),
            ],
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        started: dict[str, int] = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        try:
            await self._proxy(scope, receive, send)
        finally:
            self._waiting.pop(handle, None)
        try:
            answer = as_dict(orjson.loads(b"".join(chunks)))
        except orjson.JSONDecodeError:
            answer = {"error": {"code": "upstream_invalid", "message": "the answer was not JSON"}}
        status = started.get("status", 500)
        if status == 200:
            return CallOutcome(status, answer, None)
        return CallOutcome(status, None, as_dict(answer.get("error")) or {"message": f"HTTP {status}"})
