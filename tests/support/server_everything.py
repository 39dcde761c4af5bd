"""The npm `@modelcontextprotocol/server-everything` (the MCP reference server), as installed by `scripts/test`
into `.tools/`: find it, and start it over stdio, legacy HTTP+SSE or Streamable HTTP on 127.0.0.1.

Its CLI is `index.js [stdio|sse|streamableHttp]`; the HTTP transports listen on `PORT` (default 3001) with
no setting for the address (`app.listen(PORT)` binds every interface), so it runs with
`support/loopback_only.mjs` preloaded, which makes that listen bind 127.0.0.1, and `listening_addresses`
lets a test check that from /proc.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

from support.conformance_suite import BIN, NODE_MAJOR, TOOLS

VERSION = "2026.8.31"
PACKAGE = TOOLS / "node_modules" / "@modelcontextprotocol" / "server-everything"
ENTRY = PACKAGE / "dist" / "index.js"
NODE = BIN / "node"
LOOPBACK_ONLY = Path(__file__).resolve().parent / "loopback_only.mjs"
INSTALL_HINT = (
    f"scripts/test installs it: npm install --prefix .tools node@{NODE_MAJOR} "
    f"@modelcontextprotocol/server-everything@{VERSION}"
)


def missing() -> str | None:
    """Why the server cannot run from `.tools/`, or None when node ≥ 22 and the pinned version are there."""
    if not NODE.exists() or not ENTRY.exists():
        return f"{TOOLS} has no node or server-everything ({INSTALL_HINT})"
    version = json.loads((PACKAGE / "package.json").read_text())["version"]
    if version != VERSION:
        return f"{TOOLS} has server-everything {version}, not {VERSION} ({INSTALL_HINT})"
    node = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, timeout=30, check=False)
    major = re.match(r"v(\d+)\.", node.stdout)
    if major is None or int(major.group(1)) < NODE_MAJOR:
        return f"{NODE} is {node.stdout.strip() or node.stderr.strip()!r}, server-everything needs ≥ {NODE_MAJOR}"
    return None


def stdio_command() -> dict[str, object]:
    """`connection_headers` of a STDIO connection that runs the server."""
    return {"command": str(NODE), "args": [str(ENTRY), "stdio"]}


def start(transport: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start it over `sse` or `streamableHttp` on 127.0.0.1:`port`; returns once it accepts connections."""
    command = [str(NODE), "--import", LOOPBACK_ONLY.as_uri(), str(ENTRY), transport]
    env = {"PATH": str(BIN), "PORT": str(port), "HOME": str(log.parent)}
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server-everything {transport} exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server-everything {transport} did not listen on {port}: {log.read_text()}")


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (hex, as /proc/net/tcp and tcp6 show them)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, also as ::ffff:127.0.0.1
