""" "Connect a client": one endpoint (meshgate, a connection, or a virtual MCP in one of its modes) and the
configuration each common MCP client needs for it.

Snippets are built here, not in the template: JSON through `json.dumps` and shell commands through
`shlex.join`, so what the page shows always parses, whatever a title or URL contains."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Visit
from meshgate.jsonvalues import as_dict, as_list
from meshgate.protocol import CLIENT_CAPABILITIES_META, PROTOCOL_VERSION_META, STATELESS_VERSION

KEY_PLACEHOLDER = "YOUR_API_KEY"
# (query value, label): `?mode=` of a virtual MCP endpoint (see the README's virtual MCP modes).
MODES = (("", "all tools"), ("search", "search mode"), ("code", "code mode"))


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str
    title: str
    note: str
    text: str
    language: str  # "json", "shell", "python" or "typescript": how a test (or a reader) checks it


@dataclass(frozen=True, slots=True)
class Endpoint:
    value: str  # the `endpoint` query value that selects it
    label: str
    url: str
    server_name: str


class ConnectPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        return [Route("/app/{org}/connect", self._d.view(self.connect), methods=["GET"])]

    async def connect(self, request: Request, visit: Visit) -> Response:
        public = self._d.runtime.settings.public_url
        connections, virtuals = await self._listed(visit)
        choices = [Endpoint("", "meshgate management", f"{public}/mcp", "meshgate")]
        choices += [
            Endpoint(f"c:{c['id']}", str(c["title"]), f"{public}/mcp/{c['id']}", slug(str(c["title"])))
            for c in connections
        ]
        virtual_choices = [
            Endpoint(f"v:{v['id']}", str(v["title"]), f"{public}/mcp/virtual/{v['id']}", slug(str(v["title"])))
            for v in virtuals
        ]
        wanted = request.query_params.get("endpoint", "")
        if not wanted and request.query_params.get("connection"):
            wanted = "c:" + request.query_params["connection"]  # the page's earlier links
        target = next((e for e in choices + virtual_choices if e.value == wanted), choices[0])
        mode = request.query_params.get("mode", "") if target.value.startswith("v:") else ""
        if mode not in {value for value, _ in MODES}:
            mode = ""
        url = target.url + (f"?mode={mode}" if mode else "")
        name = target.server_name + (f"-{mode}" if mode else "")
        return self._d.page(
            request,
            visit,
            "dashboard/connect.html",
            section="connect",
            choices=choices,
            virtual_choices=virtual_choices,
            target=target,
            mode=mode,
            modes=MODES,
            url=url,
            may_create_keys=visit.can("API_KEY_CREATE"),
            snippets=snippets(url, name),
        )

    async def _listed(self, visit: Visit) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        connections: list[dict[str, Any]] = []
        virtuals: list[dict[str, Any]] = []
        if visit.can("COLLECTION_CONNECTIONS_LIST"):
            listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
            connections = [as_dict(c) for c in as_list(listed["items"])]
        if visit.can("COLLECTION_VIRTUAL_MCP_LIST"):
            listed = await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_LIST", {"limit": 1000})
            virtuals = [as_dict(v) for v in as_list(listed["items"])]
        return connections, virtuals


def snippets(url: str, name: str) -> list[Snippet]:
    """What each client needs to reach `url` under the server name `name`."""
    bearer = f"Bearer {KEY_PLACEHOLDER}"
    http_config = {"url": url, "headers": {"Authorization": bearer}}
    return [
        Snippet(
            "cfg-claude",
            "Claude Desktop",
            "claude_desktop_config.json (Settings → Developer → Edit Config). mcp-remote logs in with OAuth in "
            "your browser on first use.",
            _json({"mcpServers": {name: {"command": "npx", "args": ["-y", "mcp-remote", url]}}}),
            "json",
        ),
        Snippet(
            "cfg-claude-code",
            "Claude Code",
            "Run in a terminal; add --scope project to share it through .mcp.json.",
            shlex.join(
                ["claude", "mcp", "add", "--transport", "http", name, url, "--header", f"Authorization: {bearer}"]
            ),
            "shell",
        ),
        Snippet(
            "cfg-cursor",
            "Cursor",
            "~/.cursor/mcp.json (or .cursor/mcp.json in a project).",
            _json({"mcpServers": {name: http_config}}),
            "json",
        ),
        Snippet(
            "cfg-vscode",
            "VS Code",
            ".vscode/mcp.json: VS Code asks for the key once and keeps it in its secret storage.",
            _json(
                {
                    "inputs": [
                        {
                            "type": "promptString",
                            "id": "meshgate-key",
                            "description": "meshgate API key",
                            "password": True,
                        }
                    ],
                    "servers": {
                        name: {"type": "http", "url": url, "headers": {"Authorization": "Bearer ${input:meshgate-key}"}}
                    },
                }
            ),
            "json",
        ),
        Snippet(
            "cfg-windsurf",
            "Windsurf",
            "~/.codeium/windsurf/mcp_config.json",
            _json({"mcpServers": {name: {"serverUrl": url, "headers": {"Authorization": bearer}}}}),
            "json",
        ),
        Snippet(
            "cfg-inspector",
            "MCP Inspector",
            "Lists the tools from a terminal; without --cli it opens the Inspector's web page instead.",
            shlex.join(
                [
                    "npx",
                    "@modelcontextprotocol/inspector",
                    "--cli",
                    url,
                    "--transport",
                    "http",
                    "--header",
                    f"Authorization: {bearer}",
                    "--method",
                    "tools/list",
                ]
            ),
            "shell",
        ),
        Snippet("cfg-python", "MCP Python SDK", "pip install 'mcp>=2'", _python(url), "python"),
        Snippet(
            "cfg-ts",
            "MCP TypeScript SDK",
            "npm install @modelcontextprotocol/sdk (an ES module: save as .mjs)",
            _typescript(url),
            "typescript",
        ),
        Snippet(
            "cfg-curl",
            "curl",
            "One JSON-RPC message per POST in the stateless protocol version: no initialize, no session.",
            shlex.join(
                [
                    "curl",
                    "-s",
                    url,
                    "-H",
                    f"Authorization: {bearer}",
                    "-H",
                    "Content-Type: application/json",
                    "-H",
                    "Accept: application/json, text/event-stream",
                    "-H",
                    f"MCP-Protocol-Version: {STATELESS_VERSION}",
                    "-d",
                    _json_line(TOOLS_LIST),
                ]
            ),
            "shell",
        ),
    ]


# One stateless-era (2026-07-28) request: no `initialize` and no session, whatever the endpoint's upstream speaks.
TOOLS_LIST: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/list",
    "params": {"_meta": {PROTOCOL_VERSION_META: STATELESS_VERSION, CLIENT_CAPABILITIES_META: {}}},
}


def _json_line(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _python(url: str) -> str:
    return f"""import asyncio

import httpx
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

URL = {json.dumps(url)}
HEADERS = {{"Authorization": "Bearer {KEY_PLACEHOLDER}"}}


async def main() -> None:
    async with httpx.AsyncClient(headers=HEADERS, timeout=30) as http:
        async with Client(streamable_http_client(URL, http_client=http)) as client:
            print([tool.name for tool in (await client.list_tools()).tools])


asyncio.run(main())"""


def _typescript(url: str) -> str:
    return f"""import {{ Client }} from "@modelcontextprotocol/sdk/client/index.js";
import {{ StreamableHTTPClientTransport }} from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const transport = new StreamableHTTPClientTransport(new URL({json.dumps(url)}), {{
  requestInit: {{ headers: {{ Authorization: "Bearer {KEY_PLACEHOLDER}" }} }},
}});
const client = new Client({{ name: "my-app", version: "1.0.0" }});
await client.connect(transport);
console.log((await client.listTools()).tools.map((tool) => tool.name));
await client.close();"""


def slug(title: str) -> str:
    """A server name clients accept: lowercase letters, digits and dashes."""
    cleaned = "".join(ch.lower() if ch.isalnum() else "-" for ch in title).strip("-")
    return "-".join(part for part in cleaned.split("-") if part)[:40] or "meshgate"
