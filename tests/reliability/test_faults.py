"""Faults: SIGKILL under load leaves a consistent database and a gateway that starts and serves again;
PostgreSQL restarted under load is survived without restarting meshgate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from meshgate.db.database import Database
from support.databases import fresh_database, server_url
from support.gateway import Gateway, Upstream, create_connection, free_port, start_gateway
from support.secrets import remember_secret


async def _load(url: str, key: str, calls: int, stop_after: int, on_stop: object) -> int:
    """Send calls at 16 concurrent clients; call `on_stop()` once `stop_after` have completed."""
    done = 0
    ok = 0
    fired = asyncio.Event()
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as client:

        async def one(n: int) -> None:
            nonlocal done, ok
            try:
                response = await client.post(f"{url}/call-tool/add", json={"a": n, "b": 0})
                ok += int(response.status_code == 200)
            except httpx.TransportError:
                pass
            done += 1
            if done == stop_after and not fired.is_set():
                fired.set()
                on_stop()  # type: ignore[operator]

        semaphore = asyncio.Semaphore(16)

        async def bounded(n: int) -> None:
            async with semaphore:
                await one(n)

        await asyncio.gather(*(bounded(n) for n in range(calls)))
    return ok


def test_sigkill_under_load_leaves_a_consistent_database(tmp_db: str, tmp_path: Path, upstream: Upstream) -> None:
    gw = start_gateway(tmp_db, tmp_path)
    owner = gw.bootstrap("kill@example.com")
    url = create_connection(gw, owner.api_key, upstream)
    assert gw.process is not None
    process = gw.process
    succeeded = asyncio.run(_load(url, owner.api_key, 400, 100, lambda: os.kill(process.pid, signal.SIGKILL)))
    assert process.wait(timeout=10) == -signal.SIGKILL
    assert 100 <= succeeded < 400

    async def check() -> None:
        db = Database(tmp_db)
        try:
            async with db.engine.connect() as connection:
                if db.dialect == "sqlite":
                    assert (await connection.execute(text("PRAGMA integrity_check"))).scalar() == "ok"
                assert (await connection.execute(text("SELECT count(*) FROM api_keys"))).scalar() == 1
        finally:
            await db.close()

    asyncio.run(check())
    again = Gateway(env=gw.env, port=free_port()).start(tmp_path / "again.log")
    try:
        response = httpx.post(
            f"{again.url}{url.removeprefix(gw.url)}/call-tool/add",
            json={"a": 1, "b": 1},
            headers={"authorization": f"Bearer {owner.api_key}"},
        )
        assert response.status_code == 200
    finally:
        assert again.stop() == 0


def _pg_restart() -> None:
    version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _tool(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        gateway.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}},
        headers={"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"},
        timeout=30,
    )
    return response.json()["result"]


def _add(url: str, key: str) -> int:
    return httpx.post(
        f"{url}/call-tool/add", json={"a": 1, "b": 1}, headers={"authorization": f"Bearer {key}"}
    ).status_code


def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def test_postgresql_restart_under_load_is_survived(tmp_path: Path, upstream: Upstream) -> None:
    server_url("postgresql")
    if not Path("/etc/postgresql").exists() or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs the local cluster and root (pg_ctlcluster)")
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(url, tmp_path, "first")
        second = Gateway(env=first.env, port=free_port()).start(tmp_path / "second.log")
        try:
            owner = first.bootstrap("pg@example.com")
            conn_url = create_connection(first, owner.api_key, upstream)
            second_url = second.url + conn_url.removeprefix(first.url)
            succeeded = asyncio.run(_load(conn_url, owner.api_key, 600, 150, _pg_restart))
            assert succeeded == 600  # the proxy path needs no database in the steady state
            _until(lambda: httpx.get(f"{first.url}/health/ready").status_code == 200)
            # Writes work again without restarting meshgate.
            created = _tool(first, owner.api_key, "API_KEY_CREATE", {"name": "after-restart"})
            assert created["isError"] is False, created
            key = created["structuredContent"]["key"]
            remember_secret(key)
            assert _add(second_url, key) == 200
            # The second process re-opened its change notifications: a deletion through the first reaches it.
            deleted = _tool(first, owner.api_key, "API_KEY_DELETE", {"keyId": created["structuredContent"]["id"]})
            assert deleted["isError"] is False
            _until(lambda: _add(second_url, key) == 401)
        finally:
            assert second.stop() == 0
            assert first.stop() == 0
