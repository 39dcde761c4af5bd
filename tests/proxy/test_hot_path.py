"""A proxied call does no database query once caches are warm (measured on a real engine)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from meshgate.app import create_app
from meshgate.bootstrap import bootstrap_owner
from meshgate.db.migrate import apply_migrations
from meshgate.settings import load_settings
from support.gateway import Upstream

pytestmark = pytest.mark.anyio


async def test_steady_state_tools_call_runs_no_query(tmp_path: Path, upstream: Upstream) -> None:
    url = f"sqlite:///{tmp_path / 'hot.db'}"
    env = {
        "DATABASE_URL": url,
        "MESHGATE_DATA_DIR": str(tmp_path),
        "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MESHGATE_SECRET": secrets.token_urlsafe(32),
    }
    gateway = create_app(load_settings(env))
    runtime = gateway.state.runtime
    await apply_migrations(runtime.db.engine)
    owner = await bootstrap_owner(url, email="hot@example.com", password=None, org_name="Hot")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO MONITORING_LOGS"):
            statements.append(statement)

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)
    headers = {"authorization": f"Bearer {owner.api_key}", "host": "127.0.0.1"}
    async with gateway.app.router.lifespan_context(gateway.app):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
            create = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {
                    "name": "COLLECTION_CONNECTIONS_CREATE",
                    "arguments": {
                        "data": {
                            "title": "Up",
                            "connection_type": "HTTP",
                            "connection_url": upstream.url,
                            "connection_token": upstream.token,
                        }
                    },
                },
            }
            created = await client.post("/mcp", json=create, headers={"accept": "application/json, text/event-stream"})
            conn_id = created.json()["result"]["structuredContent"]["id"]
            call_url = f"/mcp/{conn_id}/call-tool/add"
            assert (await client.post(call_url, json={"a": 1, "b": 1})).status_code == 200  # warms the caches
            statements.clear()
            for n in range(20):
                response = await client.post(call_url, json={"a": n, "b": 1})
                assert response.status_code == 200
            during_calls = list(statements)
    # (Shutdown then writes key last-used times and audit records in the background; not counted.)
    assert during_calls == []
