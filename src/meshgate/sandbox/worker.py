"""The sandbox worker: a child process that runs one JavaScript program at a time in a fresh QuickJS runtime.

It speaks newline-delimited JSON over stdin/stdout with `meshgate.sandbox.service` and imports nothing of
meshgate (it runs with an empty environment, so it holds no secret the gateway has). The program sees the
ECMAScript built-ins, `console` and `tools`; nothing else of the host: no file system, network, timers,
modules or environment. A limit that the program could otherwise catch (tool calls, output) ends the whole
process, so no `try` outlives it; so does the CPU budget (SIGPROF) and the parent's wall-time kill.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any, BinaryIO

import orjson
import quickjs as _quickjs  # pyright: ignore[reportMissingTypeStubs]

quickjs: Any = _quickjs  # an untyped C extension

_STACK_BYTES = 1 << 20

# Runs once per program, before it: takes the host functions off the global object into closures.
_PRELUDE = r"""
(() => {
  const call = globalThis.__meshgate_call, log = globalThis.__meshgate_log, done = globalThis.__meshgate_done;
  delete globalThis.__meshgate_call; delete globalThis.__meshgate_log; delete globalThis.__meshgate_done;
  const show = (value) => {
    if (typeof value === "string") return value;
    try { const text = JSON.stringify(value); return text === undefined ? String(value) : text; }
    catch (e) { return String(value); }
  };
  const write = (level) => (...args) => { log(level, args.map(show).join(" ")); };
  globalThis.console = Object.freeze({
    log: write("log"), info: write("info"), warn: write("warn"), error: write("error"), debug: write("debug"),
  });
  class ToolError extends Error {
    constructor(message, code, result) {
      super(message); this.name = "ToolError"; this.code = code; this.result = result;
    }
  }
  const callTool = (name) => async (args) => {
    const answer = JSON.parse(call(name, JSON.stringify(args === undefined ? {} : args)));
    if (answer.error !== undefined) throw new ToolError(answer.error, answer.code, answer.result);
    return answer.value;
  };
  const known = Object.create(null);
  for (const name of JSON.parse(__MESHGATE_NAMES__)) known[name] = callTool(name);
  Object.freeze(known);
  // Any other name is still called, so that a tool outside the caller's grants gets meshgate's own refusal.
  const tools = new Proxy(known, {
    get: (target, name) => typeof name !== "string" || name === "then" ? undefined : (target[name] ?? callTool(name)),
    set: () => false, defineProperty: () => false, deleteProperty: () => false,
  });
  Object.defineProperty(globalThis, "tools", { value: tools, writable: false, configurable: false });
  Object.defineProperty(globalThis, "ToolError", { value: ToolError, writable: false, configurable: false });
  const finish = (ok, value) => { done(ok, value); };
  const failure = (e) => e instanceof Error ? `${e.name}: ${e.message}` + (e.stack ? "\n" + e.stack : "") : show(e);
  return (run) => {
    run().then(
      (value) => {
        try { finish(true, value === undefined ? "null" : (JSON.stringify(value) ?? "null")); }
        catch (e) { finish(false, failure(e)); }
      },
      (e) => {
        try { finish(false, failure(e)); }
        catch (e2) { finish(false, "the program threw a value that cannot be shown"); }
      },
    );
  };
})()
"""


class _Run:
    """One program's state as the host functions see it."""

    def __init__(self, job: dict[str, Any], out: BinaryIO, inp: BinaryIO) -> None:
        self.out, self.inp = out, inp
        self.max_calls = int(job["tool_calls"])
        self.max_output = int(job["output_bytes"])
        self.calls = 0
        self.output = 0
        self.logs: list[str] = []
        self.finished: tuple[bool, str] | None = None

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(orjson.dumps(message) + b"\n")
        self.out.flush()

    def end(self, code: str, message: str) -> None:
        """A limit the program must not be able to catch: report it and end the process."""
        self.send({"failed": code, "message": message, "logs": self.logs, "calls": self.calls})
        os._exit(0)

    def call(self, name: Any, arguments: Any) -> str:
        if not isinstance(name, str) or not isinstance(arguments, str):
            return orjson.dumps({"error": "tools.<name>(args) takes one JSON object"}).decode()
        self.calls += 1
        if self.calls > self.max_calls:
            self.end("sandbox_tool_call_limit", f"the program called tools more than {self.max_calls} times")
        self.send({"call": name, "arguments": orjson.loads(arguments)})
        return self.inp.readline().decode()

    def log(self, level: Any, text: Any) -> None:
        line = str(text) if level in ("log", "info", "debug") else f"[{level}] {text}"
        self.output += len(line.encode()) + 1
        if self.output > self.max_output:
            self.end("sandbox_output_limit", f"console output passed {self.max_output} bytes")
        self.logs.append(line)

    def done(self, ok: Any, value: Any) -> None:
        if self.finished is None:
            self.finished = (bool(ok), str(value))


def _run(job: dict[str, Any], out: BinaryIO, inp: BinaryIO) -> dict[str, Any]:
    state = _Run(job, out, inp)
    context = quickjs.Context()
    context.set_memory_limit(int(job["memory_bytes"]))
    context.set_max_stack_size(_STACK_BYTES)
    context.add_callable("__meshgate_call", state.call)
    context.add_callable("__meshgate_log", state.log)
    context.add_callable("__meshgate_done", state.done)
    # QuickJS's own time limit refuses calls into Python, so the kernel keeps the CPU budget: SIGPROF, left
    # at its default action, ends this process when its CPU time (host functions included) reaches it.
    signal.setitimer(signal.ITIMER_PROF, float(job["cpu_seconds"]))
    try:
        return _evaluate(context, state, job)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def _evaluate(context: Any, state: _Run, job: dict[str, Any]) -> dict[str, Any]:
    try:
        names = orjson.dumps(orjson.dumps(list(job["tools"])).decode()).decode()
        context.eval("globalThis.__meshgate_start = " + _PRELUDE.replace("__MESHGATE_NAMES__", names))
        program = "(() => { const start = globalThis.__meshgate_start; delete globalThis.__meshgate_start; "
        program += "start(async () => {\n" + str(job["code"]) + "\n}); })()"
        context.eval(program)
        while state.finished is None and context.execute_pending_job():
            pass
    except quickjs.JSException as error:
        return _failure(state, str(error))  # pyright: ignore[reportUnknownArgumentType]
    if state.finished is None:
        return _fail(state, "sandbox_program_error", "the program awaits something that nothing will settle")
    ok, value = state.finished
    if not ok:
        return _failure(state, value)
    if state.output + len(value.encode()) > state.max_output:
        return _fail(state, "sandbox_output_limit", f"output and returned value passed {state.max_output} bytes")
    return {"done": value, "logs": state.logs, "calls": state.calls}


def _failure(state: _Run, text: str) -> dict[str, Any]:
    if "out of memory" in text:
        return _fail(state, "sandbox_memory_limit", "the program allocated more memory than it may")
    if "stack overflow" in text:
        return _fail(state, "sandbox_memory_limit", "the program recursed deeper than its stack allows")
    return _fail(state, "sandbox_program_error", text[:4000])


def _fail(state: _Run, code: str, message: str) -> dict[str, Any]:
    return {"failed": code, "message": message, "logs": state.logs, "calls": state.calls}


def main() -> None:
    """Serve jobs until stdin closes."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file grows, whatever a bug in the engine does
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the protocol goes to the parent
    out.write(b'{"ready":true}\n')
    out.flush()
    for line in inp:
        job = orjson.loads(line)
        answer = _run(job, out, inp)
        out.write(orjson.dumps(answer) + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
