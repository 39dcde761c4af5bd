"""An OAuth-protected MCP server on 127.0.0.1 whose authorization server refuses meshgate's dynamic registration
with whatever `error` and `error_description` the test sets (to see what meshgate repeats of them)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HostileAuthorizationServer:
    base: str
    refusal: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"


@contextmanager
def hostile_authorization_server() -> Iterator[HostileAuthorizationServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = HostileAuthorizationServer(f"http://127.0.0.1:{server.server_address[1]}")
    documents = {
        "/.well-known/oauth-protected-resource/mcp": {"resource": state.url, "authorization_servers": [state.base]},
        "/.well-known/oauth-authorization-server": {
            "issuer": state.base,
            "authorization_endpoint": f"{state.base}/authorize",
            "token_endpoint": f"{state.base}/token",
            "registration_endpoint": f"{state.base}/register",
            "code_challenge_methods_supported": ["S256"],
        },
    }

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            document = documents.get(self.path)
            self._answer(200 if document is not None else 404, document or {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path == "/register":
                self._answer(400, state.refusal)
                return
            metadata = f'Bearer resource_metadata="{state.base}/.well-known/oauth-protected-resource/mcp"'
            self._answer(401, {"error": "unauthorized"}, {"www-authenticate": metadata})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            return

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
