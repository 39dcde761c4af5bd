"""Health endpoints, readiness when the database is gone, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from meshgate import __version__
from meshgate.app import create_app
from meshgate.db.migrate import apply_migrations
from meshgate.settings import load_settings
from support.databases import drop_database_now, fresh_database
from support.gateway import Gateway, start_gateway

pytestmark = pytest.mark.anyio


def test_health_and_liveness_answer_ok_with_the_version(gateway: Gateway) -> None:
    for path in ("/health", "/health/live"):
        response = httpx.get(gateway.url + path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "version": __version__}
    assert httpx.get(gateway.url + "/health/ready").json()["status"] == "ready"


def test_readiness_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        gw = start_gateway(url, tmp_path)
        try:
            assert httpx.get(gw.url + "/health/ready").status_code == 200
            asyncio.run(drop_database_now("postgresql", url))
            response = httpx.get(gw.url + "/health/ready", timeout=10)
            assert response.status_code == 503
            assert response.json()["status"] == "database_unavailable"
            assert httpx.get(gw.url + "/health/live").status_code == 200
        finally:
            gw.stop()


async def test_readiness_is_503_once_shutdown_has_begun(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}", "MESHGATE_DATA_DIR": str(tmp_path)}
    app = create_app(load_settings(env))

    await apply_migrations(app.state.db.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/health/ready")).status_code == 200
        app.state.shutting_down = True
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "shutting_down"
    await app.state.db.close()


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path)
        owner = gw.bootstrap("sigterm@example.com")
        body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ORGANIZATION_GET","arguments":{}}}'
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nAuthorization: Bearer {owner.api_key}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", gw.port), timeout=30) as sock:
            sock.sendall(head + body[:20])  # the request is now in flight, its body half sent
            time.sleep(0.3)
            gw.terminate()
            time.sleep(0.3)
            assert gw.process is not None and gw.process.poll() is None, "gateway exited with a request in flight"
            sock.sendall(body[20:])
            reply = b""
            while b"\r\n\r\n" not in reply or owner.organization_id.encode() not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert owner.organization_id.encode() in reply
        assert gw.stop(timeout=30) == 0
