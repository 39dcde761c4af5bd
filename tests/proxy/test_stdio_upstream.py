"""STDIO upstreams (`--local-mode`): one long-lived process per connection serving concurrent callers of
both generations, a minimal environment, stderr in the log, restarts after crashes without zombies,
orphans or leaked descriptors, a cap on processes, one process per credential, and the process group gone at
shutdown.
Servers: one written in the tests (support/stdio_upstream.py) and `mcp-server-time` from PyPI."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from conftest import new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Owner, start_gateway
from support.mcp_client import call, call_error, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
TESTS = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("stdio")
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp, MESHGATE_LOCAL_MODE="1", MESHGATE_STDIO_MAX_PROCESSES="10")
        try:
            yield gateway
        finally:
            code = gateway.stop()
            assert code == 0, f"gateway exit code {code}; log tail: {gateway.logs()[-3000:]}"


def _stdio(marker: str = "m") -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS, "MARKER": marker},
    }


async def _create(gateway: Gateway, owner: Owner, title: str, stdio: dict[str, Any]) -> dict[str, Any]:
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": title, "connection_type": "STDIO", "connection_headers": stdio}},
        )


async def _tool(gateway: Gateway, owner: Owner, conn_id: str, name: str, args: dict[str, Any] | None = None) -> str:
    async with connect(f"{gateway.url}/mcp/{conn_id}", owner.api_key) as client:
        result = await client.call_tool(name, args or {})
    assert not result.is_error, result
    return result.content[0].text  # type: ignore[union-attr]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append((int(entry.name), stat[0]))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _innermost(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _descriptors(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


async def test_stdio_needs_local_mode(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        message = await call_error(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "x", "connection_type": "STDIO", "connection_headers": _stdio()}},
        )
    assert "--local-mode" in message


async def test_one_process_serves_concurrent_callers_with_a_minimal_environment(local: Gateway) -> None:
    owner = await new_owner(local)
    conn = await _create(local, owner, "Local", _stdio("marker-1"))
    assert conn["status"] == "active" and {"echo", "crash", "pid"} <= {t["name"] for t in conn["tools"]}
    # The command is configuration (issue 22): reads show it, and the environment's names, never its values.
    assert conn["connection_headers"] == {
        "set": True,
        "names": ["MARKER", "PYTHONPATH"],
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
    }
    answers: dict[str, str] = {}
    pids: set[str] = set()

    async def caller(number: int) -> None:
        async with connect(
            f"{local.url}/mcp/{conn['id']}", owner.api_key, "legacy" if number % 2 else "2026-07-28"
        ) as client:
            for round_ in range(5):
                result = await client.call_tool("echo", {"text": f"{number}-{round_}"})
                answers[f"{number}-{round_}"] = result.content[0].text  # type: ignore[union-attr]
            pids.add((await client.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]

    async with anyio.create_task_group() as group:
        for number in range(8):
            group.start_soon(caller, number)
    assert answers == {key: key for key in answers} and len(answers) == 40
    assert len(pids) == 1  # one process, multiplexed
    seen = json.loads(await _tool(local, owner, conn["id"], "env"))
    assert seen["marker"] == "marker-1"
    assert not {"MESHGATE_SECRET", "ENCRYPTION_KEY", "DATABASE_URL"} & set(seen["names"])
    await _tool(local, owner, conn["id"], "shout", {"text": "from-stderr-42"})
    with anyio.fail_after(10):
        while True:
            if "SHOUT from-stderr-42" in local.logs():
                break
            await anyio.sleep(0.05)


async def test_an_update_keeps_environment_values_given_as_null(local: Gateway) -> None:
    owner = await new_owner(local)
    stdio = _stdio(remember_secret("kept-marker-81"))
    stdio["envVars"]["DROPPED"] = "x"
    conn = await _create(local, owner, "Keeps", stdio)
    changed = {**stdio, "args": ["-m", "support.stdio_upstream", "--unused"]}
    async with connect(local.mcp_url, owner.api_key) as client:
        unknown = {**changed, "envVars": {"PYTHONPATH": None, "NEVER_SET": None}}
        refused = await call_error(
            client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"connection_headers": unknown}}
        )
        assert "envVars.NEVER_SET: null keeps the stored value, but none is stored" in refused
        kept = {**changed, "envVars": {"PYTHONPATH": None, "MARKER": None}}
        updated = await call(
            client, "COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"connection_headers": kept}}
        )
    assert updated["status"] == "active", updated
    assert updated["connection_headers"]["args"] == changed["args"]
    assert updated["connection_headers"]["names"] == ["MARKER", "PYTHONPATH"]
    seen = json.loads(await _tool(local, owner, conn["id"], "env"))
    assert seen["marker"] == "kept-marker-81" and "DROPPED" not in seen["names"]


async def test_third_party_mcp_server_time_from_pypi(local: Gateway) -> None:
    owner = await new_owner(local)
    command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert command is not None, "mcp-server-time is a test dependency (pip install -e '.[test]')"
    conn = await _create(local, owner, "Time", {"command": command, "args": ["--local-timezone", "Etc/UTC"]})
    assert "get_current_time" in {t["name"] for t in conn["tools"]}
    results = []

    async def ask() -> None:
        results.append(json.loads(await _tool(local, owner, conn["id"], "get_current_time", {"timezone": "Etc/UTC"})))

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(ask)
    assert len(results) == 6 and all(r["timezone"] == "Etc/UTC" for r in results)


async def test_crashes_restart_the_process_without_zombies_orphans_or_leaks(local: Gateway) -> None:
    assert local.process is not None
    gateway_pid = local.process.pid
    owner = await new_owner(local)
    conn = await _create(local, owner, "Crashy", _stdio())
    url = f"{local.url}/mcp/{conn['id']}"
    first_pid = int(await _tool(local, owner, conn["id"], "pid"))
    child = int(await _tool(local, owner, conn["id"], "spawn_child"))
    baseline = _descriptors(gateway_pid)
    outcomes = {"ok": 0, "refused": 0}

    async def worker(offset: int) -> None:
        async with connect(url, owner.api_key) as client:
            for n in range(offset, 1000, 4):
                name, args = ("crash", {}) if n % 50 == 25 else ("echo", {"text": str(n)})
                try:
                    result = await client.call_tool(name, args)
                except MCPError:
                    outcomes["refused"] += 1
                    continue
                outcomes["ok" if not result.is_error else "refused"] += 1

    async with anyio.create_task_group() as group:
        for offset in range(4):
            group.start_soon(worker, offset)
    assert outcomes["ok"] + outcomes["refused"] == 1000
    assert outcomes["ok"] >= 900, outcomes  # crashes cost the calls in flight, not the rest
    assert not _alive(first_pid) and not _alive(child)  # the crashed server and its group are gone
    assert int(await _tool(local, owner, conn["id"], "pid")) != first_pid
    zombies = [pid for pid, state in _children(gateway_pid) if state == "Z"]
    assert zombies == []
    assert _descriptors(gateway_pid) <= baseline + 4, (baseline, _descriptors(gateway_pid))


async def test_the_cap_holds_until_a_process_stops(tmp_path: Path) -> None:
    """Idle-out itself is tested in-process with an injected clock (tests/connections/test_caller_sessions.py);
    here a deleted connection frees its process's place under the cap."""
    with fresh_database("sqlite", tmp_path) as url:
        gateway = start_gateway(url, tmp_path, MESHGATE_LOCAL_MODE="1", MESHGATE_STDIO_MAX_PROCESSES="3")
        try:
            owner = await new_owner(gateway)
            conns = [await _create(gateway, owner, f"Capped {n}", _stdio()) for n in range(4)]
            pids = [int(await _tool(gateway, owner, conn["id"], "pid")) for conn in conns[:3]]
            assert all(_alive(pid) for pid in pids)
            refusals: list[str] = []
            try:
                async with connect(f"{gateway.url}/mcp/{conns[3]['id']}", owner.api_key) as client:
                    await client.call_tool("pid", {})
            except* MCPError as group:
                refusals.append(str(_innermost(group)))
            assert refusals and "MESHGATE_STDIO_MAX_PROCESSES=3" in refusals[0]  # the handshake already says why
            async with connect(gateway.mcp_url, owner.api_key) as admin:
                await call(admin, "COLLECTION_CONNECTIONS_DELETE", {"id": conns[0]["id"]})
            with anyio.fail_after(15):
                while True:
                    if not _alive(pids[0]):
                        break
                    await anyio.sleep(0.05)
            assert int(await _tool(gateway, owner, conns[3]["id"], "pid")) not in pids  # room again
        finally:
            assert gateway.stop() == 0, gateway.logs()


async def test_shutdown_stops_the_process_group(tmp_path: Path) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gateway = start_gateway(url, tmp_path, MESHGATE_LOCAL_MODE="1")
        try:
            owner = await new_owner(gateway)
            conn = await _create(gateway, owner, "Stopped", _stdio())
            server = int(await _tool(gateway, owner, conn["id"], "pid"))
            child = int(await _tool(gateway, owner, conn["id"], "spawn_child"))
            assert _alive(server) and _alive(child)
        finally:
            assert gateway.stop() == 0, gateway.logs()
    assert not _alive(server) and not _alive(child)


def test_the_gateway_ignores_sigpipe(local: Gateway) -> None:
    """uvloop leaves SIGPIPE at its default; a write to a STDIO server that just died killed the gateway
    (exit -13) under load before meshgate ignored it."""
    assert local.process is not None
    status = Path(f"/proc/{local.process.pid}/status").read_text()
    ignored = int(status.split("SigIgn:")[1].split()[0], 16)
    assert ignored & (1 << (13 - 1)), "SIGPIPE (13) is not ignored by the gateway"


async def test_each_api_key_gets_its_own_process(local: Gateway) -> None:
    """A STDIO server's state is its process: two credentials never share one; the same credential does."""
    owner = await new_owner(local)
    conn = await _create(local, owner, "Per caller", _stdio())
    async with connect(local.mcp_url, owner.api_key) as admin:
        made = await call(admin, "API_KEY_CREATE", {"name": "second caller"})
    second = Owner(owner.user_id, owner.organization_id, owner.organization_slug, remember_secret(made["key"]))
    first_pid = await _tool(local, owner, conn["id"], "pid")
    assert await _tool(local, owner, conn["id"], "pid") == first_pid
    second_pid = await _tool(local, second, conn["id"], "pid")
    assert second_pid != first_pid
    assert await _tool(local, second, conn["id"], "pid") == second_pid
