"""A gateway app inside the test process (for what only memory shows: spans, query counts)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from meshgate.app import create_app
from meshgate.bootstrap import bootstrap_owner
from meshgate.db.migrate import apply_migrations
from meshgate.runtime import Runtime
from meshgate.settings import load_settings
from support.gateway import Upstream, connection_request
from support.secrets import remember_secret


@dataclass
class InProcessGateway:
    client: httpx.AsyncClient
    runtime: Runtime
    conn_id: str
    key: str


@asynccontextmanager
async def in_process_gateway(
    tmp_path: Path,
    upstream: Upstream,
    env: dict[str, str] | None = None,
    before_start: Any = None,
    database_url: str | None = None,
) -> AsyncIterator[InProcessGateway]:
    """A migrated database (SQLite unless `database_url`), an owner key, the app's lifespan entered and a
    connection to `upstream` created."""
    url = database_url or f"sqlite:///{tmp_path / 'inprocess.db'}"
    settings = load_settings(
        {
            "DATABASE_URL": url,
            "MESHGATE_DATA_DIR": str(tmp_path),
            "ENCRYPTION_KEY": remember_secret(base64.b64encode(secrets.token_bytes(32)).decode()),
            "MESHGATE_SECRET": remember_secret(secrets.token_urlsafe(32)),
            **(env or {}),
        }
    )
    gateway = create_app(settings)
    runtime: Runtime = gateway.state.runtime
    await apply_migrations(runtime.db.engine)
    owner = await bootstrap_owner(url, email="inprocess@example.com", password=None, org_name="In process")
    remember_secret(owner.api_key)
    if before_start is not None:
        before_start(runtime)
    headers = {"authorization": f"Bearer {owner.api_key}", "host": "127.0.0.1"}
    async with gateway.app.router.lifespan_context(gateway.app):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client:
            created = await client.post(
                "/mcp", json=connection_request(upstream), headers={"accept": "application/json, text/event-stream"}
            )
            conn_id = created.json()["result"]["structuredContent"]["id"]
            yield InProcessGateway(client, runtime, conn_id, owner.api_key)
