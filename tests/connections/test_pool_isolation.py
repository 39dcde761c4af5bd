"""Another organization's connection id answers exactly like an id that does not exist, even when its client
is in this process's pool (security review, finding 14: the answer's speed must not tell it apart)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from meshgate.bootstrap import bootstrap_owner
from meshgate.errors import NotFound
from meshgate.runtime import Runtime
from support.gateway import Upstream
from support.inprocess import in_process_gateway

pytestmark = pytest.mark.anyio


@pytest.mark.finding(14)
async def test_a_foreign_pooled_id_takes_the_path_of_an_unknown_one(tmp_path: Path, upstream: Upstream) -> None:
    statements: list[str] = []

    def listen(runtime: Runtime) -> None:
        event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    async with in_process_gateway(tmp_path, upstream, before_start=listen) as gateway:
        pool = gateway.runtime.upstreams
        response = await gateway.client.post(f"/mcp/{gateway.conn_id}/call-tool/add", json={"a": 1, "b": 2})
        assert response.status_code == 200  # the connection's client is now in the pool
        url = str(gateway.runtime.settings.database_url)
        other = await bootstrap_owner(url, email="other@example.com", password=None, org_name="Other")

        async def queries_for(connection_id: str) -> list[int]:
            counts: list[Any] = []
            for _ in range(2):
                statements.clear()
                with pytest.raises(NotFound, match=f"connection {connection_id} not found"):
                    await pool.get(other.organization_id, connection_id)
                counts.append(len(statements))
            return counts

        foreign = await queries_for(gateway.conn_id)
        unknown = await queries_for(str(uuid.uuid4()))
    assert foreign == unknown
    assert foreign[0] > 0 and foreign[1] == 0  # looked up once, then remembered as not there
