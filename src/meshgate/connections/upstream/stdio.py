"""Local MCP servers started as processes (STDIO connections, only with `--local-mode`).

One long-lived process per connection and gateway process, started on first use, with requests
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
from collections.abc import Mapping
from typing import Any

import orjson

from meshgate.connections.upstream.multiplex import HANDSHAKE_VERSION, MultiplexedSession
from meshgate.errors import UpstreamError, UpstreamUnavailable, UpstreamUnreachable
from meshgate.jsonvalues import as_dict, as_list

log = logging.getLogger("meshgate.stdio")

_LINE_LIMIT = 16 * 1024 * 1024
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_STOP_GRACE_S = 2.0


class StdioSupervisor:
    """How many local processes run, against the cap; and how long an idle one may live."""

    def __init__(self, max_processes: int, idle_s: float) -> None:
        self.max_processes = max_processes
        self.idle_s = idle_s
        self.running = 0

    def admit(self, title: str) -> None:
        if self.running >= self.max_processes:
            raise UpstreamUnavailable(
                f"cannot start {title}: {self.running} local processes already run "
                f"(MESHGATE_STDIO_MAX_PROCESSES={self.max_processes})"
            )
        self.running += 1

    def release(self) -> None:
        self.running = max(0, self.running - 1)


def restart_delay(crashes: int) -> float:
    """No wait after one crash; then 0.1 s doubling up to 10 s."""
    return 0.0 if crashes <= 1 else min(10.0, 0.1 * 2 ** (crashes - 2))


class StdioSession(MultiplexedSession):
    def __init__(
        self,
        title: str,
        spec: Mapping[str, Any],
        supervisor: StdioSupervisor,
        *,
        connect_timeout: float,
        call_timeout: float,
        capabilities: Mapping[str, Any],
    ) -> None:
        super().__init__(
            title,
            connect_timeout=connect_timeout,
            call_timeout=call_timeout,
            version=HANDSHAKE_VERSION,
            capabilities=capabilities,
        )
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
        self._last_used = time.monotonic()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def _open(self) -> None:
        wait = self._next_start - time.monotonic()
        if wait > 0:
            raise UpstreamUnavailable(f"{self.title} exited {self._crashes} times in a row; restarting in {wait:.1f} s")
        env = {name: os.environ[name] for name in _INHERITED if name in os.environ} | self._env_vars
        self._supervisor.admit(self.title)
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
            self._supervisor.release()
            raise UpstreamUnreachable(f"cannot start {self.title} ({self._command}): {exc.strerror or exc}") from exc
        self._stopping = False
        self._last_used = time.monotonic()
        log.info("started %s (pid %s)", self.title, self._process.pid)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(self._process)),
            loop.create_task(self._log_stderr(self._process)),
            loop.create_task(self._stop_when_idle()),
        ]

    def _receive(self, data: str | bytes) -> None:
        self._crashes = 0
        super()._receive(data)

    async def _send(self, message: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            raise UpstreamUnreachable(f"{self.title} is not running")
        self._last_used = time.monotonic()
        try:
            process.stdin.write(orjson.dumps(message) + b"\n")
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise UpstreamUnreachable(f"{self.title} stopped reading its input") from exc

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None  # noqa: S101  (created with a pipe)
        failure: UpstreamError | None = None
        try:
            while line := await process.stdout.readline():
                if line.strip():
                    self._receive(line)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            failure = UpstreamUnreachable(f"{self.title} wrote a line over {_LINE_LIMIT} bytes: {exc}")
        code = await process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever it started in its group goes with it
        if not self._stopping:
            self._crashes += 1
            self._next_start = time.monotonic() + restart_delay(self._crashes)
            log.warning("%s exited with %s; it restarts on the next call", self.title, code)
            await self._release(process)
        self._ended(failure or UpstreamUnreachable(f"{self.title} exited with code {code}"))

    async def _log_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None  # noqa: S101  (created with a pipe)
        with contextlib.suppress(ValueError, asyncio.LimitOverrunError):
            while line := await process.stderr.readline():
                log.info("%s: %s", self.title, line.decode("utf-8", errors="replace").rstrip()[:2000])

    async def _stop_when_idle(self) -> None:
        idle_s = self._supervisor.idle_s
        while True:
            await asyncio.sleep(max(0.05, idle_s / 4))
            if not self._waiting and time.monotonic() - self._last_used >= idle_s:
                log.info("stopping %s after %.0f s without calls", self.title, idle_s)
                asyncio.get_running_loop().create_task(self.close())
                return

    async def _shut(self) -> None:
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
            self._supervisor.release()


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
