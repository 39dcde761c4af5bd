"""Which gateway and which MCP endpoint a URL names: `https://gw.example/mcp/abc?mode=search` is the gateway
`https://gw.example` and the endpoint `/mcp/abc` (the resource an OAuth token is bound to)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from meshgate.remote.errors import BadInput

MANAGEMENT_PATH = "/mcp"


@dataclass(frozen=True, slots=True)
class Endpoint:
    base: str  # scheme://host[:port][/prefix], no trailing slash
    path: str  # "/mcp", "/mcp/<connection id>", "/mcp/virtual/<id>"
    query: str = ""

    @property
    def url(self) -> str:
        return self.base + self.path + (f"?{self.query}" if self.query else "")

    @property
    def resource(self) -> str:
        return self.base + self.path


def parse_endpoint(url: str) -> Endpoint:
    """A gateway URL (management endpoint `/mcp` implied) or the URL of one of its MCP endpoints."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"{url[:200]!r} is not a gateway URL (expected http(s)://host[:port][/mcp/...])")
    path = parts.path.rstrip("/")
    at = path.find("/mcp")
    while at != -1 and path[at + 4 : at + 5] not in ("", "/"):
        at = path.find("/mcp", at + 1)
    prefix, endpoint = (path, MANAGEMENT_PATH) if at == -1 else (path[:at], path[at:])
    return Endpoint(base=f"{parts.scheme}://{parts.netloc}{prefix}", path=endpoint, query=parts.query)
