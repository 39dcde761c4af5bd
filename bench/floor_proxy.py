"""The floor proxy: uvicorn plus meshgate's own upstream client and nothing else.

Run:  .venv/bin/python bench/floor_proxy.py --port 3200 --upstream http://127.0.0.1:3100/mcp --token T

It forwards every POST to one Streamable HTTP upstream with the upstream's bearer token and relays the
answer: no authentication, permissions, audit, telemetry or sessions of its own. `bench/proxy_overhead.py`
starts it beside meshgate and reports meshgate's figures as ratios to it, so the cost of what meshgate
adds is read in the same run, on the same machine load.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import uvicorn

from meshgate.connections.models import ConnectionSecrets, UpstreamConfig
from meshgate.connections.upstream import UpstreamClient

_FORWARDED = ("content-type", "accept", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name")
_RELAYED = ("content-type", "mcp-session-id")


class FloorProxy:
    def __init__(self, upstream_url: str, token: str) -> None:
        config = UpstreamConfig(
            id="floor",
            organization_id="floor",
            title="floor",
            connection_type="HTTP",
            url=upstream_url,
            status="active",
            secrets=ConnectionSecrets(token=token),
            connect_timeout_ms=5000,
            call_timeout_ms=60000,
        )
        self.client = UpstreamClient(config)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        given = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        headers = {**{k: given[k] for k in _FORWARDED if k in given}, **self.client.credential_headers}
        response = await self.client.open(scope["method"], headers, body or None)
        try:
            answer = await response.read(64 * 1024 * 1024, idle_s=60)
        finally:
            response.release()
        relayed = [(k.encode(), response.headers[k].encode()) for k in _RELAYED if k in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": relayed})
        await send({"type": "http.response.body", "body": answer, "more_body": False})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        FloorProxy(args.upstream, args.token),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
