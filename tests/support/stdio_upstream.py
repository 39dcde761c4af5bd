"""An MCP server on stdio (the SDK's MCPServer), started by meshgate as a STDIO connection in tests.

Run: python -m support.stdio_upstream   (PYTHONPATH must include tests/)
Tools: echo, pid (its process id), env (its environment variable names and MARKER), crash (exits at
once with code 3), spawn_child (starts a `sleep` in its process group and reports its pid), shout
(writes a line to stderr); GENERATED_TOOLS=K in the environment adds local_000 ... tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-upstream")


@server.tool(description="Echo text back")
def echo(text: str) -> str:
    return text


@server.tool(description="This process's id")
def pid() -> str:
    return str(os.getpid())


@server.tool(description="Environment variable names, and the value of MARKER")
def env() -> str:
    return json.dumps({"names": sorted(os.environ), "marker": os.environ.get("MARKER")})


@server.tool(description="Exit at once, as a crash would")
def crash() -> str:
    os._exit(3)


@server.tool(description="Start a long sleep in this process group; returns its pid")
def spawn_child() -> str:
    child = subprocess.Popen(["sleep", "300"])
    return str(child.pid)


@server.tool(description="Write a line to stderr")
def shout(text: str) -> str:
    print(f"SHOUT {text}", file=sys.stderr, flush=True)
    return "ok"


def _answering(n: int) -> Callable[[], str]:
    def tool() -> str:
        return f"local {n}"

    return tool


for _n in range(int(os.environ.get("GENERATED_TOOLS", "0"))):
    server.tool(name=f"local_{_n:03d}", description=f"Generated local tool number {_n}")(_answering(_n))


if __name__ == "__main__":
    server.run("stdio")
