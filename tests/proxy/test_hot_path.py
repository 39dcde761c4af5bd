"""A proxied call does no database query once caches are warm (counted on the real engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from meshgate.runtime import Runtime
from support.gateway import Upstream
from support.inprocess import in_process_gateway

pytestmark = pytest.mark.anyio


async def test_steady_state_tools_call_runs_no_query(tmp_path: Path, upstream: Upstream) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO MONITORING_LOGS"):
            statements.append(statement)

    def listen(runtime: Runtime) -> None:
        event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)

    async with in_process_gateway(tmp_path, upstream, before_start=listen) as gateway:
        call_url = f"/mcp/{gateway.conn_id}/call-tool/add"
        assert (await gateway.client.post(call_url, json={"a": 1, "b": 1})).status_code == 200  # warms the caches
        statements.clear()
        for n in range(20):
            response = await gateway.client.post(call_url, json={"a": n, "b": 1})
            assert response.status_code == 200
        during_calls = list(statements)
    # (Shutdown then writes key last-used times and audit records in the background; not counted.)
    assert during_calls == []
