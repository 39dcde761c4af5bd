"""The SDK-built test upstream (support.upstream), except that an unknown session id answers HTTP 400 with a
JSON-RPC error of id null, as some servers do, instead of the spec's 404.

Run: python -m support.forgetful_upstream --port N [--token T]
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from support.upstream import RecordHeaders, build_server

_FORGOTTEN = {"jsonrpc": "2.0", "error": {"code": -32000, "message": "Bad Request: No valid session ID provided"}}


class UnknownSessionIs400:
    """Turns the SDK's 404 for an unknown session into a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def rewrite(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 404:
                rewriting = True
                return
            if not rewriting:
                await send(message)
            elif not message.get("more_body"):
                body = json.dumps({**_FORGOTTEN, "id": None}).encode()
                headers: list[Any] = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_server(0).streamable_http_app(host="127.0.0.1")
    uvicorn.run(
        RecordHeaders(UnknownSessionIs400(app), args.token), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
