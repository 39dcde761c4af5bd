"""A hand-written Streamable HTTP MCP server whose GET stream floods the client with requests (security review 15).

Run: python -m support.flood_http_upstream --port N --count K
`initialize` opens a session; the session's GET stream sends K roots/list requests in one burst and stays
open; answers POSTed back are counted; the tool `answers` returns `results=R errors=E` so far.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio
import uvicorn
from starlette.types import Receive, Scope, Send

COUNTS = {"results": 0, "errors": 0}
SESSION = "flood-session-1"


async def _json(send: Send, message: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json"), (b"mcp-session-id", SESSION.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(message).encode()})


def build(count: int) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            burst = "".join(
                f"event: message\ndata: {json.dumps({'jsonrpc': '2.0', 'id': f'flood-{n}', 'method': 'roots/list'})}\n\n"
                for n in range(count)
            )
            await send({"type": "http.response.body", "body": burst.encode(), "more_body": True})
            await anyio.sleep_forever()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        method = request.get("method")
        if method is None:  # an answer to one of our requests
            COUNTS["results" if "result" in request else "errors"] += 1
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif method == "initialize":
            result = {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "flood-http"},
            }
            await _json(send, {"jsonrpc": "2.0", "id": request["id"], "result": result})
        elif "id" not in request:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            text = f"results={COUNTS['results']} errors={COUNTS['errors']}"
            await _json(
                send, {"jsonrpc": "2.0", "id": request["id"], "result": {"content": [{"type": "text", "text": text}]}}
            )

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    uvicorn.run(build(args.count), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
