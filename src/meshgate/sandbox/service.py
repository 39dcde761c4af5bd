"""`SandboxService`: runs JavaScript programs in pooled worker processes under hard limits.

A run takes an idle worker (or starts one), sends it the program, answers its tool calls with `call`
(an awaitable the caller supplies, which goes through meshgate's call service) and reads its result. The
event loop only ever waits on pipes. Memory is QuickJS's own limit; CPU time is the worker's SIGPROF
timer; wall time, tool calls and output are counted here or in the worker, and a breach ends the worker
process. At most `concurrent` runs go at once; the others wait for a slot (within their wall time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from meshgate.errors import (
    MeshgateError,
    SandboxCpuTimeExceeded,
    SandboxError,
    SandboxMemoryExceeded,
    SandboxOutputTooLarge,
    SandboxProgramError,
    SandboxTooManyToolCalls,
    SandboxWallTimeExceeded,
)
from meshgate.settings import SandboxLimits

log = logging.getLogger(__name__)

# What a tool call from inside answers: {"value": ...} or {"error": message, "code": ..., "result": ...}.
ToolCall = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

_FAILURES: dict[str, type[SandboxError]] = {
    "sandbox_program_error": SandboxProgramError,
    "sandbox_memory_limit": SandboxMemoryExceeded,
    "sandbox_output_limit": SandboxOutputTooLarge,
    "sandbox_tool_call_limit": SandboxTooManyToolCalls,
}
_SETTING: dict[type[SandboxError], str] = {
    SandboxMemoryExceeded: "MESHGATE_SANDBOX_MEMORY_BYTES",
    SandboxOutputTooLarge: "MESHGATE_SANDBOX_OUTPUT_BYTES",
    SandboxTooManyToolCalls: "MESHGATE_SANDBOX_TOOL_CALLS",
}


@dataclass(slots=True)
class RunOutcome:
    """What one run gave: the returned value as JSON text, console lines, tool calls made, or the error."""

    value: str | None = None
    logs: list[str] = field(default_factory=list[str])
    tool_calls: int = 0
    error: SandboxError | None = None

    def returned(self) -> Any:
        return None if self.value is None else orjson.loads(self.value)


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None  # noqa: S101  (started with pipes)
        assert process.stdout is not None  # noqa: S101
        self.stdin = process.stdin
        self.stdout = process.stdout

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(orjson.dumps(message) + b"\n")

    async def receive(self) -> dict[str, Any] | None:
        line = await self.stdout.readline()
        return orjson.loads(line) if line else None

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class SandboxService:
    """Runs programs for callers; one per process, closed at shutdown."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.concurrent)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._reaping: set[asyncio.Task[int]] = set()

    async def run(self, code: str, tool_names: list[str], call: ToolCall) -> RunOutcome:
        """Run `code` (the body of an async function) with `tools.<name>(args)` answered by `call`."""
        outcome = RunOutcome()
        try:
            async with asyncio.timeout(self.limits.wall_seconds):
                async with self._slots:
                    await self._run(code, tool_names, call, outcome)
        except TimeoutError:
            outcome.error = SandboxWallTimeExceeded(
                f"the run lasted longer than {self.limits.wall_seconds:g} s (MESHGATE_SANDBOX_WALL_SECONDS)"
            )
        return outcome

    async def _run(self, code: str, tool_names: list[str], call: ToolCall, outcome: RunOutcome) -> None:
        worker = await self._take()
        clean = False
        try:
            limits = self.limits
            job = {
                "code": code,
                "tools": tool_names,
                "memory_bytes": limits.memory_bytes,
                "cpu_seconds": limits.cpu_seconds,
                "output_bytes": limits.output_bytes,
                "tool_calls": limits.tool_calls,
            }
            worker.send(job)
            while True:
                message = await worker.receive()
                if message is None:
                    outcome.error = await self._ended(worker)
                    return
                if "call" in message:
                    outcome.tool_calls += 1
                    answer = await _answer(call, message)
                    worker.send(answer)
                    continue
                outcome.logs = [str(line) for line in message.get("logs", [])]
                outcome.tool_calls = int(message.get("calls", outcome.tool_calls))
                if "done" in message:
                    outcome.value = str(message["done"])
                    clean = True
                    return
                kind = _FAILURES.get(str(message.get("failed")), SandboxError)
                text = str(message.get("message"))
                setting = _SETTING.get(kind)
                outcome.error = kind(f"{text} ({setting})" if setting else text)
                clean = kind is SandboxProgramError  # a program error leaves the worker as good as new
                return
        finally:
            self._give_back(worker, clean)

    async def _ended(self, worker: _Worker) -> SandboxError:
        code = await worker.process.wait()
        if code == -signal.SIGPROF:
            seconds = self.limits.cpu_seconds
            return SandboxCpuTimeExceeded(
                f"the program computed longer than {seconds:g} s of CPU time (MESHGATE_SANDBOX_CPU_SECONDS)"
            )
        return SandboxError(f"the sandbox worker ended unexpectedly (exit status {code})")

    async def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
            self._all.discard(worker)
        return await self._start()

    async def _start(self) -> _Worker:
        # An empty environment: the worker holds none of the gateway's secrets; `-I` ignores PYTHON* variables
        # and the user's site directory.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-m",
            "meshgate.sandbox.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd="/",
            limit=2 * self.limits.output_bytes + (16 << 20),
        )
        worker = _Worker(process)
        self._all.add(worker)
        ready = await worker.receive()
        if ready != {"ready": True}:
            worker.kill()
            self._all.discard(worker)
            raise SandboxError("the sandbox worker did not start (is the quickjs package installed?)")
        return worker

    def _give_back(self, worker: _Worker, clean: bool) -> None:
        if clean and worker.alive and len(self._idle) < self.limits.concurrent:
            self._idle.append(worker)
            return
        worker.kill()
        self._all.discard(worker)
        reaped = asyncio.ensure_future(worker.process.wait())  # collect the exit status, close the pipes
        self._reaping.add(reaped)
        reaped.add_done_callback(self._reaping.discard)

    async def warm(self) -> None:
        """Start one worker ahead of the first run."""
        if not self._idle:
            self._give_back(await self._start(), clean=True)

    async def close(self) -> None:
        """End every worker (runs in progress end with a SandboxError)."""
        for worker in list(self._all):
            worker.kill()
            with contextlib.suppress(ProcessLookupError):
                await worker.process.wait()
        self._all.clear()
        self._idle.clear()
        await asyncio.gather(*self._reaping, return_exceptions=True)


async def _answer(call: ToolCall, message: dict[str, Any]) -> dict[str, Any]:
    arguments = message.get("arguments")
    if not isinstance(arguments, dict):
        return {"error": "tools.<name>(args) takes one object of arguments", "code": "invalid_input"}
    try:
        return await call(str(message["call"]), arguments)  # pyright: ignore[reportUnknownArgumentType]
    except MeshgateError as error:
        return {"error": f"{error.code}: {error.message}", "code": error.code}
