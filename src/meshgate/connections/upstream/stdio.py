"""Local MCP servers started as processes (STDIO connections, only with `--local-mode`).

One long-lived process per connection, caller and gateway process, started on first use, with requests
multiplexed over its stdin/stdout (newline-delimited JSON-RPC, ids remapped by the session). The
process runs in its own process group with a minimal environment (PATH, HOME, LANG and the
connection's `envVars` — never meshgate's own secrets); its stderr goes to meshgate's log. When it
exits on its own, waiting calls fail and it is restarted on the next call, with a growing delay
after repeated crashes. It is stopped after `MESHGATE_STDIO_IDLE_SECONDS` without calls and at
shutdown: stdin closed, then SIGTERM, then SIGKILL to the whole group, and always reaped.
`MESHGATE_STDIO_MAX_PROCESSES` caps how many run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from meshgate.connections.upstream.multiplex import TransportLink
from meshgate.errors import UpstreamError, UpstreamUnavailable, UpstreamUnreachable
from meshgate.jsonvalues import as_dict, as_list

log = logging.getLogger("meshgate.stdio")

_LINE_LIMIT = 16 * 1024 * 1024
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_STOP_GRACE_S = 2.0


Clock = Callable[[], float]


class StdioSupervisor:
    """How many local processes run, against the cap; and how long an idle one may live (by `clock`)."""

    def __init__(self, max_processes: int, idle_s: float, *, clock: Clock = time.monotonic) -> None:
        self.max_processes = max_processes
        self.idle_s = idle_s
        self.clock = clock
        self.running = 0
        self._transports: set[StdioTransport] = set()

    async def stop_idle(self) -> int:
        """Stop every process idle for `idle_s` with no call in flight (each also checks by itself); how many."""
        stopped = [transport for transport in list(self._transports) if transport.idle()]
        for transport in stopped:
            await transport.stop_idle()
        return len(stopped)

    def admit(self, transport: StdioTransport) -> None:
        """Count a process about to start (refused at the cap)."""
        if self.running >= self.max_processes:
            raise UpstreamUnavailable(
                f"cannot start {transport.title}: {self.running} local processes already run "
                f"(MESHGATE_STDIO_MAX_PROCESSES={self.max_processes})"
            )
        self.running += 1

    def started(self, transport: StdioTransport) -> None:
        self._transports.add(transport)

    def release(self, transport: StdioTransport) -> None:
        self._transports.discard(transport)
        self.running = max(0, self.running - 1)


def restart_delay(crashes: int) -> float:
    """No wait after one crash; then 0.1 s doubling up to 10 s."""
    return 0.0 if crashes <= 1 else min(10.0, 0.1 * 2 ** (crashes - 2))


class StdioTransport:
    """A `Transport`: newline-delimited JSON-RPC over a local process's stdin and stdout."""

    def __init__(self, title: str, spec: Mapping[str, Any], supervisor: StdioSupervisor) -> None:
        self.title = title
        self._command = str(spec.get("command", ""))
        self._args = [str(arg) for arg in as_list(spec.get("args"))]
        self._cwd = spec.get("cwd")
        self._env_vars = {str(k): str(v) for k, v in as_dict(spec.get("envVars")).items()}
        self._supervisor = supervisor
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._crashes = 0
        self._next_start = 0.0
        self._last_used = supervisor.clock()
        self._link: TransportLink | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def open(self, link: TransportLink) -> None:
        wait = self._next_start - self._supervisor.clock()
        if wait > 0:
            raise UpstreamUnavailable(f"{self.title} exited {self._crashes} times in a row; restarting in {wait:.1f} s")
        env = {name: os.environ[name] for name in _INHERITED if name in os.environ} | self._env_vars
        self._supervisor.admit(self)
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._command,
                *self._args,
                cwd=self._cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            self._supervisor.release(self)
            raise UpstreamUnreachable(f"cannot start {self.title} ({self._command}): {exc.strerror or exc}") from exc
        self._stopping = False
        self._last_used = self._supervisor.clock()
        self._link = link
        self._supervisor.started(self)
        log.info("started %s (pid %s)", self.title, self._process.pid)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(self._process, link)),
            loop.create_task(self._log_stderr(self._process)),
            loop.create_task(self._stop_when_idle()),
        ]

    async def send(self, message: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            raise UpstreamUnreachable(f"{self.title} is not running")
        self._last_used = self._supervisor.clock()
        try:
            process.stdin.write(orjson.dumps(message) + b"\n")
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise UpstreamUnreachable(f"{self.title} stopped reading its input") from exc

    async def _read(self, process: asyncio.subprocess.Process, link: TransportLink) -> None:
        assert process.stdout is not None  # noqa: S101  (created with a pipe)
        failure: UpstreamError | None = None
        try:
            while line := await process.stdout.readline():
                if line.strip():
                    self._crashes = 0
                    link.receive(line)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            failure = UpstreamUnreachable(f"{self.title} wrote a line over {_LINE_LIMIT} bytes: {exc}")
        code = await process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever it started in its group goes with it
        if not self._stopping:
            self._crashes += 1
            self._next_start = self._supervisor.clock() + restart_delay(self._crashes)
            log.warning("%s exited with %s; it restarts on the next call", self.title, code)
            await self._release(process)
        link.ended(failure or UpstreamUnreachable(f"{self.title} exited with code {code}"))

    async def _log_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None  # noqa: S101  (created with a pipe)
        with contextlib.suppress(ValueError, asyncio.LimitOverrunError):
            while line := await process.stderr.readline():
                log.info("%s: %s", self.title, line.decode("utf-8", errors="replace").rstrip()[:2000])

    def idle(self) -> bool:
        """Running, with no call in flight, and unused for the supervisor's idle time."""
        link = self._link
        if self._process is None or link is None or link.busy():
            return False
        return self._supervisor.clock() - self._last_used >= self._supervisor.idle_s

    async def stop_idle(self) -> None:
        """Stop the idle process; the session opens a new one on its next call."""
        link = self._link
        log.info("stopping %s after %.0f s without calls", self.title, self._supervisor.idle_s)
        await self.shut()
        if link is not None:
            link.ended(UpstreamUnreachable(f"{self.title} was stopped after being idle"))

    async def _stop_when_idle(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self._supervisor.idle_s / 4))
            if self.idle():
                # Not from this task: stopping cancels it.
                asyncio.get_running_loop().create_task(self.stop_idle())
                return

    async def shut(self) -> None:
        process = self._process
        self._stopping = True
        if process is not None:
            await _stop(process)
            await self._release(process)
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self._tasks = []

    async def _release(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
            self._link = None
            self._supervisor.release(self)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Close stdin, then SIGTERM, then SIGKILL the whole process group; always reap."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        try:
            async with asyncio.timeout(_STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            continue
        break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # anything the server left behind in its group
