"""The sandbox service on its own: what a program can reach, and every hard limit ending a run with its code.

Real worker processes running QuickJS; tool calls are answered by a plain coroutine here (the gateway tests in
test_code_mode.py answer them through meshgate's call pipeline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meshgate.errors import (
    ConfigurationError,
    SandboxCpuTimeExceeded,
    SandboxMemoryExceeded,
    SandboxOutputTooLarge,
    SandboxProgramError,
    SandboxTooManyToolCalls,
    SandboxWallTimeExceeded,
)
from meshgate.sandbox.service import RunOutcome, SandboxService
from meshgate.settings import SandboxLimits, load_settings

pytestmark = pytest.mark.anyio

LIMITS = SandboxLimits(
    memory_bytes=16 << 20, cpu_seconds=1.0, wall_seconds=20.0, output_bytes=20_000, tool_calls=5, concurrent=4
)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxService]:
    service = SandboxService(LIMITS)
    yield service
    await service.close()


async def echo(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"value": {"tool": name, "arguments": arguments}}


async def run(sandbox: SandboxService, code: str, tools: tuple[str, ...] = ("echo",)) -> RunOutcome:
    return await sandbox.run(code, list(tools), echo)


async def returned(sandbox: SandboxService, code: str) -> Any:
    outcome = await run(sandbox, code)
    assert outcome.error is None, outcome.error
    return outcome.returned()


async def test_a_program_calls_tools_logs_and_returns_json(sandbox: SandboxService) -> None:
    outcome = await run(sandbox, "console.log('one', {a: 1}); const r = await tools.echo({x: 2}); return {r}")
    assert outcome.error is None
    assert outcome.returned() == {"r": {"tool": "echo", "arguments": {"x": 2}}}
    assert outcome.logs == ['one {"a":1}']
    assert outcome.tool_calls == 1


async def test_the_program_sees_no_host_objects(sandbox: SandboxService) -> None:
    seen = await returned(
        sandbox,
        "return ['process', 'require', 'std', 'os', 'setTimeout', 'setInterval', 'fetch', 'XMLHttpRequest', "
        "'WebSocket', 'Deno', 'Bun', '__meshgate_call', '__meshgate_log', '__meshgate_done', '__meshgate_start']"
        ".filter((name) => typeof globalThis[name] !== 'undefined')",
    )
    assert seen == []


async def test_import_is_refused(sandbox: SandboxService) -> None:
    outcome = await run(sandbox, "const os = await import('os'); return typeof os.getenv")
    assert isinstance(outcome.error, SandboxProgramError)
    static = await run(sandbox, "import * as std from 'std'; return 1")
    assert isinstance(static.error, SandboxProgramError)


async def test_eval_and_the_function_constructor_reach_only_the_sandbox(sandbox: SandboxService) -> None:
    found = await returned(
        sandbox,
        "const f = this.constructor.constructor; const viaProto = ({}).constructor.constructor('return this')();"
        "return [eval('typeof process'), Function('return typeof require')(), typeof viaProto.process,"
        " (() => { try { return typeof f('return process')() } catch (e) { return 'threw' } })()]",
    )
    assert found == ["undefined", "undefined", "undefined", "threw"]  # ReferenceError: no such global


async def test_prototype_tricks_cannot_replace_the_tool_bridge(sandbox: SandboxService) -> None:
    found = await returned(
        sandbox,
        "Object.prototype.echo = 'polluted'; Array.prototype.map = () => 'polluted';"
        "const before = tools.echo; tools.echo = null; delete tools.echo; tools.other = 1;"
        "let redefined = 'no'; try { Object.defineProperty(tools, 'echo', {value: 1}); redefined = 'yes' } catch (e) {}"
        "const answer = await tools.echo({k: 1});"
        "return [tools.echo === before, typeof tools.other, redefined, Object.isFrozen(console), answer.arguments.k]",
    )
    assert found == [True, "function", "no", True, 1]  # any other name is a tool call, never a stored value
    # Making every object thenable breaks only the program's own promises: it ends, it does not hang.
    thenable = await run(sandbox, "Object.prototype.then = () => {}; return await tools.echo({})")
    assert isinstance(thenable.error, SandboxProgramError)
    clean = await returned(sandbox, "return [typeof Object.prototype.then, typeof ({}).echo, [1].map((x) => x)]")
    assert clean == ["undefined", "undefined", [1]]  # the next run starts from fresh built-ins


async def test_state_does_not_survive_into_the_next_run(sandbox: SandboxService) -> None:
    assert await returned(sandbox, "globalThis.leak = 'secret'; Array.prototype.x = 1; return 1") == 1
    assert await returned(sandbox, "return [typeof leak, typeof [].x]") == ["undefined", "undefined"]


async def test_promises_left_pending_do_not_outlive_the_run(sandbox: SandboxService) -> None:
    calls: list[str] = []

    async def record(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        calls.append(name)
        return {"value": None}

    code = "Promise.resolve().then(async () => { for (;;) { await null } }); return 'ended'"
    outcome = await sandbox.run(code, ["t"], record)
    assert outcome.error is None or isinstance(outcome.error, SandboxCpuTimeExceeded)
    never = await sandbox.run("new Promise(() => {}).then(() => tools.t({})); return 2", ["t"], record)
    assert never.returned() == 2
    assert calls == []
    waits = await sandbox.run("await new Promise(() => {})", ["t"], record)
    assert isinstance(waits.error, SandboxProgramError)
    assert "nothing will settle" in waits.error.message


async def test_an_infinite_loop_ends_by_cpu_time_even_inside_try(sandbox: SandboxService) -> None:
    outcome = await run(sandbox, "try { while (true) {} } catch (e) { return 'caught' } finally { return 'finally' }")
    assert isinstance(outcome.error, SandboxCpuTimeExceeded)
    assert "MESHGATE_SANDBOX_CPU_SECONDS" in outcome.error.message
    assert await returned(sandbox, "return 'next run works'") == "next run works"


async def test_a_memory_bomb_ends_by_the_memory_limit(sandbox: SandboxService) -> None:
    outcome = await run(sandbox, "const a = []; for (;;) a.push('x'.repeat(4096) + a.length)")
    assert isinstance(outcome.error, SandboxMemoryExceeded)
    assert "MESHGATE_SANDBOX_MEMORY_BYTES" in outcome.error.message
    deep = await run(sandbox, "const f = (n) => f(n + 1) + 1; return f(0)")
    assert isinstance(deep.error, SandboxMemoryExceeded)


async def test_huge_output_ends_the_run_even_when_caught(sandbox: SandboxService) -> None:
    logged = await run(sandbox, "for (;;) { try { console.log('y'.repeat(1000)) } catch (e) {} }")
    assert isinstance(logged.error, SandboxOutputTooLarge)
    assert len(logged.logs) < 25
    big = await run(sandbox, "return 'z'.repeat(50000)")
    assert isinstance(big.error, SandboxOutputTooLarge)


async def test_too_many_tool_calls_end_the_run_even_when_caught(sandbox: SandboxService) -> None:
    outcome = await run(sandbox, "for (;;) { try { await tools.echo({}) } catch (e) {} }")
    assert isinstance(outcome.error, SandboxTooManyToolCalls)
    assert outcome.tool_calls == LIMITS.tool_calls + 1
    assert "MESHGATE_SANDBOX_TOOL_CALLS" in outcome.error.message


async def test_a_tool_call_that_never_answers_ends_by_wall_time() -> None:
    service = SandboxService(SandboxLimits(wall_seconds=0.5))
    never = asyncio.Event()

    async def hang(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        await never.wait()
        return {"value": None}

    try:
        outcome = await service.run("await tools.t({}); return 1", ["t"], hang)
        assert isinstance(outcome.error, SandboxWallTimeExceeded)
        assert "MESHGATE_SANDBOX_WALL_SECONDS" in outcome.error.message
        assert (await service.run("return 3", [], hang)).returned() == 3
    finally:
        await service.close()


async def test_a_tool_failure_is_a_catchable_tool_error(sandbox: SandboxService) -> None:
    async def refuse(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"error": "permission_denied: calling t needs the permission v:t", "code": "permission_denied"}

    outcome = await sandbox.run(
        "try { await tools.t({}) } catch (e) { return [e.name, e.code, e.message] }", ["t"], refuse
    )
    assert outcome.returned() == [
        "ToolError",
        "permission_denied",
        "permission_denied: calling t needs the permission v:t",
    ]


async def test_concurrent_runs_each_end_by_their_own_limit_while_others_answer(sandbox: SandboxService) -> None:
    loop_run = run(sandbox, "while (true) {}")
    bomb = run(sandbox, "const a = []; for (;;) a.push('x'.repeat(4096) + a.length)")
    chatty = run(sandbox, "for (;;) await tools.echo({})")
    fine = run(sandbox, "let n = 0; for (let i = 0; i < 3; i++) n += (await tools.echo({i})).arguments.i; return n")
    results = await asyncio.gather(loop_run, bomb, chatty, fine)
    assert isinstance(results[0].error, SandboxCpuTimeExceeded)
    assert isinstance(results[1].error, SandboxMemoryExceeded)
    assert isinstance(results[2].error, SandboxTooManyToolCalls)
    assert results[3].error is None
    assert results[3].returned() == 3


def test_every_limit_is_a_setting(tmp_path: Path) -> None:
    env = {
        "MESHGATE_DATA_DIR": str(tmp_path),
        "MESHGATE_SANDBOX_MEMORY_BYTES": str(8 << 20),
        "MESHGATE_SANDBOX_CPU_SECONDS": "0.5",
        "MESHGATE_SANDBOX_WALL_SECONDS": "2",
        "MESHGATE_SANDBOX_OUTPUT_BYTES": "4096",
        "MESHGATE_SANDBOX_TOOL_CALLS": "7",
        "MESHGATE_SANDBOX_CONCURRENT": "2",
    }
    assert load_settings(env).sandbox == SandboxLimits(
        memory_bytes=8 << 20, cpu_seconds=0.5, wall_seconds=2.0, output_bytes=4096, tool_calls=7, concurrent=2
    )


def test_a_limit_of_zero_seconds_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MESHGATE_SANDBOX_CPU_SECONDS"):
        load_settings({"MESHGATE_DATA_DIR": str(tmp_path), "MESHGATE_SANDBOX_CPU_SECONDS": "0"})
