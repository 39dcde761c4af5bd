"""Start time and memory of `meshgate serve`, beside a floor process started the same way.

Run:  .venv/bin/python bench/startup.py [--runs 5]

Each run starts `meshgate serve` with the shipped defaults on the embedded SQLite database in a fresh
data directory that `meshgate bootstrap` has already migrated, and measures:

- start: from spawning the process to the first 200 from `/health/live`, and the CPU time the process
  used until then (user plus system: less sensitive than wall time to other load on the machine);
- RSS after start: the process's resident set (VmRSS) once `/health/live` answers;
- first management call: one `tools/list` on `/mcp` (the MCP SDK is loaded on that first request) and
  the RSS after it;
- idle CPU: what the process uses per second afterwards with nothing to do (background loops: the event
  worker, the audit writer, the replica heartbeat), over `--idle` seconds after a short settling time.

The floor is a Python process running uvicorn with a one-route ASGI app (`--floor PORT` runs it): what
any Python gateway on uvicorn pays before it does anything. Figures are medians over the runs, with the
ratio to the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

_DEADLINE_S = 30.0
_SETTLE_S = 2.0  # after start: first rounds of the background loops, not what idling costs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds the process has used (less sensitive to machine load than wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_live(process: subprocess.Popen[bytes], url: str, started: float) -> float:
    """Seconds from `started` to the first 200 from `url`; raises if the process dies or the deadline passes."""
    with httpx.Client(timeout=1.0) as client:
        while time.perf_counter() - started < _DEADLINE_S:
            if process.poll() is not None:
                raise RuntimeError(f"the process exited with {process.returncode} before answering")
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.005)  # polling a socket that is not listening yet: nothing else to wait on
    raise RuntimeError(f"{url} did not answer within {_DEADLINE_S:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHGATE_", "DATABASE_URL", "LOG_LEVEL"))}
    env.update(
        MESHGATE_DATA_DIR=str(data_dir),
        ENCRYPTION_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        MESHGATE_SECRET=secrets.token_urlsafe(32),
    )
    return env


def _on_cpu_ns(pid: int) -> int:
    """Nanoseconds all threads of the process have run (schedstat: finer than the 10 ms ticks of `stat`)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total


def _idle_cpu_ms_per_s(pid: int, seconds: float) -> float:
    """CPU milliseconds per second the process uses while nothing is asked of it (a measuring window)."""
    time.sleep(_SETTLE_S)
    before = _on_cpu_ns(pid)
    time.sleep(seconds)
    return (_on_cpu_ns(pid) - before) / 1e6 / seconds


def _run_floor(idle_s: float) -> tuple[float, float, float, float]:
    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--floor", str(port)])
    try:
        seconds = _wait_live(process, f"http://127.0.0.1:{port}/health/live", started)
        rss, cpu = _rss_mb(process.pid), _cpu_s(process.pid)
        return seconds, rss, cpu, _idle_cpu_ms_per_s(process.pid, idle_s)
    finally:
        _stop(process)


def _run_gateway(idle_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="meshgate-startup-") as tmp:
        env = _env(Path(tmp))
        bootstrap = subprocess.run(
            [sys.executable, "-m", "meshgate", "bootstrap", "--json", "--email", "bench@example.com"],
            env=env,
            capture_output=True,
            check=True,
        )
        api_key = json.loads(bootstrap.stdout)["api_key"]
        port = _free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "meshgate", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            seconds = _wait_live(process, f"http://127.0.0.1:{port}/health/live", started)
            rss, cpu = _rss_mb(process.pid), _cpu_s(process.pid)
            call_started = time.perf_counter()
            answer = httpx.post(
                f"http://127.0.0.1:{port}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                headers={
                    "Authorization": f"Bearer {api_key}",
                    "Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-11-25",
                },
                timeout=_DEADLINE_S,
            )
            first_call = time.perf_counter() - call_started
            if answer.status_code != 200 or not answer.json().get("result", {}).get("tools"):
                raise RuntimeError(f"tools/list answered {answer.status_code}: {answer.text[:300]}")
            return {
                "start_s": seconds,
                "cpu_s": cpu,
                "rss_mb": rss,
                "first_call_s": first_call,
                "rss_after_mb": _rss_mb(process.pid),
                "idle_ms_per_s": _idle_cpu_ms_per_s(process.pid, idle_s),
            }
        finally:
            _stop(process)


def _serve_floor(port: int) -> None:
    import uvicorn  # noqa: PLC0415  (the floor process imports only what the floor needs)

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds over which idle CPU is measured")
    parser.add_argument("--floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        _serve_floor(args.floor)
        return
    floors: list[tuple[float, float, float, float]] = []
    gateways: list[dict[str, float]] = []
    for run in range(args.runs):
        floors.append(_run_floor(args.idle))
        gateways.append(_run_gateway(args.idle))
        print(
            f"run {run + 1}/{args.runs}: start {gateways[-1]['start_s']:.2f} s, "
            f"RSS {gateways[-1]['rss_mb']:.0f} MB (floor {floors[-1][0]:.2f} s, {floors[-1][1]:.0f} MB)",
            file=sys.stderr,
        )
    floor_s = statistics.median(f[0] for f in floors)
    floor_mb = statistics.median(f[1] for f in floors)
    floor_cpu = statistics.median(f[2] for f in floors)
    floor_idle = statistics.median(f[3] for f in floors)

    def median(key: str) -> float:
        return statistics.median(g[key] for g in gateways)

    print(f"{'figure (median of ' + str(args.runs) + ' runs)':<40} {'meshgate':>10} {'floor':>10} {'ratio':>7}")
    print(
        f"{'start to /health/live':<40} {median('start_s'):>9.2f}s {floor_s:>9.2f}s {median('start_s') / floor_s:>6.2f}x"
    )
    print(
        f"{'CPU used until then':<40} {median('cpu_s'):>9.2f}s {floor_cpu:>9.2f}s {median('cpu_s') / floor_cpu:>6.2f}x"
    )
    print(f"{'RSS after start':<40} {median('rss_mb'):>8.0f}MB {floor_mb:>8.0f}MB {median('rss_mb') / floor_mb:>6.2f}x")
    print(f"{'first management call (loads the SDK)':<40} {median('first_call_s'):>9.2f}s")
    print(f"{'RSS after the first management call':<40} {median('rss_after_mb'):>8.0f}MB")
    idle = median("idle_ms_per_s")
    ratio = f"{idle / floor_idle:>6.1f}x" if floor_idle > 0 else "      -"
    print(f"{'idle CPU (ms per second)':<40} {idle:>8.2f}ms {floor_idle:>8.2f}ms {ratio}")


if __name__ == "__main__":
    main()
