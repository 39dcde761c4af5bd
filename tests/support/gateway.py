"""A real `meshgate serve` process on 127.0.0.1, and helpers to talk to it."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.secrets import remember_secret

MESHGATE = [sys.executable, "-m", "meshgate"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    inherited = ("MESHGATE_", "DATABASE_URL", "ENCRYPTION_KEY", "OTEL_", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        DATABASE_URL=database_url,
        MESHGATE_DATA_DIR=str(data_dir),
        ENCRYPTION_KEY=remember_secret(base64.b64encode(secrets.token_bytes(32)).decode()),
        MESHGATE_SECRET=remember_secret(secrets.token_urlsafe(32)),
        MESHGATE_METRICS_TOKEN=remember_secret(secrets.token_urlsafe(24)),
        LOG_LEVEL="DEBUG",
        MESHGATE_LOG_FORMAT="json",
        MESHGATE_ACCESS_LOG="1",
        MESHGATE_KEY_USAGE_FLUSH_SECONDS="0.2",
        # A shared test gateway registers many clients from 127.0.0.1; the limits' own tests set theirs.
        MESHGATE_OAUTH_REGISTER_RATE="100/s",
        MESHGATE_OAUTH_CIMD_RATE="100/s",
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHGATE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Owner:
    """What `meshgate bootstrap --json` printed."""

    user_id: str
    organization_id: str
    organization_slug: str
    api_key: str


@dataclass
class Gateway:
    """One running gateway process."""

    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    owners: list[Owner] = field(default_factory=list[Owner])
    terminated: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def scrape(self) -> str:
        """`/metrics`, with the gateway's metrics token (closed without it)."""
        token = self.env.get("MESHGATE_METRICS_TOKEN")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(f"{self.url}/metrics", headers=headers, timeout=10)
        response.raise_for_status()
        return response.text

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def start(self, log_path: Path) -> Gateway:
        self.log_path = log_path
        self.process = subprocess.Popen(
            [*MESHGATE, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not become ready:\n{log_path.read_text()}")

    def bootstrap(self, email: str, org: str = "Acme") -> Owner:
        result = run_cli(self.env, "bootstrap", "--email", email, "--org", org, "--json")
        if result.returncode != 0:
            raise RuntimeError(f"bootstrap failed: {result.stderr}")
        owner = Owner(**json.loads(result.stdout))
        remember_secret(owner.api_key)
        self.owners.append(owner)
        return owner

    def terminate(self) -> None:
        """Send SIGTERM once (a graceful stop); `stop()` then only waits."""
        if self.process is not None and not self.terminated:
            self.process.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, timeout: float = 30) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.terminate()
        code = self.process.wait(timeout=timeout)
        self.process = None
        self.terminated = False
        return code

    def logs(self) -> str:
        return "" if self.log_path is None else self.log_path.read_text(errors="replace")


def start_gateway(database_url: str, tmp: Path, name: str = "gw", **extra: str) -> Gateway:
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)
    env = gateway_env(database_url, data, **extra)
    result = run_cli(env, "migrate")
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed: {result.stderr}")
    return Gateway(env=env, port=free_port()).start(data / "gateway.log")


def rpc(gateway_url: str, body: Any, *, key: str | None, headers: dict[str, str] | None = None) -> httpx.Response:
    """One raw JSON-RPC POST (for the cases an SDK client cannot produce)."""
    all_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if key is not None:
        all_headers["authorization"] = f"Bearer {key}"
    all_headers.update(headers or {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gateway_url, content=content, headers=all_headers, timeout=30)


def manage(gateway: Gateway, key: str, tool: str, **arguments: Any) -> Any:
    """The structured result of one management tool called with `key` (a tool error fails the test)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    result = rpc(gateway.mcp_url, body, key=key).json()["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]


@dataclass
class Upstream:
    """A real SDK-built MCP server process (tests/support/upstream.py)."""

    port: int
    token: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_upstream(
    *,
    token: str = "upstream-token",
    json_response: bool = False,
    tools: int = 0,
    odd_names: bool = False,
    spoof_names: bool = False,
    modern_only: bool = False,
    legacy_only: bool = False,
    library: bool = False,
) -> Upstream:
    port = free_port()
    args = ["--port", str(port), "--token", token, "--tools", str(tools)]
    if json_response:
        args.append("--json")
    if odd_names:
        args.append("--odd-names")
    if spoof_names:
        args.append("--spoof-names")
    if modern_only:
        args.append("--modern-only")
    if legacy_only:
        args.append("--legacy-only")
    if library:
        args.append("--library")
    return Upstream(port, token, spawn_server("support.upstream", port, args))


def spawn_server(module: str, port: int, args: list[str]) -> subprocess.Popen[bytes]:
    """Start `python -m module args` from tests/ and wait until it listens on `port`."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=tests_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{module} did not start")


def connection_request(upstream: Upstream, title: str = "Upstream") -> dict[str, Any]:
    """The JSON-RPC message that registers `upstream` as an HTTP connection."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "COLLECTION_CONNECTIONS_CREATE",
            "arguments": {
                "data": {
                    "title": title,
                    "connection_type": "HTTP",
                    "connection_url": upstream.url,
                    "connection_token": upstream.token,
                }
            },
        },
    }


def create_connection(gateway: Gateway, key: str, upstream: Upstream) -> str:
    """Register `upstream` through a running gateway; returns the connection's proxy URL."""
    answer = httpx.post(
        gateway.mcp_url,
        json=connection_request(upstream),
        headers={"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"},
        timeout=30,
    ).json()
    return f"{gateway.url}/mcp/{answer['result']['structuredContent']['id']}"
