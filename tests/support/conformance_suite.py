"""The official MCP conformance suite (npm `@modelcontextprotocol/conformance`), as installed by
`scripts/test` into `.tools/`: find it, run its server scenarios against a URL, read the verdicts."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUITE_VERSION = "0.1.16"
NODE_MAJOR = 22
TOOLS = Path(__file__).resolve().parents[2] / ".tools"
BIN = TOOLS / "node_modules" / ".bin"
INSTALL_HINT = f"scripts/test installs them: npm install --prefix .tools node@{NODE_MAJOR} @modelcontextprotocol/conformance@{SUITE_VERSION}"

# A scenario's verdict, from its checks: FAILURE anywhere → fail; else WARNING anywhere → warn (the
# suite's own summary counts both as not passing); else pass. `missing`: the run produced no checks.json.
RANK = {"pass": 0, "warn": 1, "fail": 2, "missing": 2}


def missing_tools() -> str | None:
    """Why the suite cannot run from `.tools/`, or None when node ≥ 22 and the pinned suite are there."""
    package = TOOLS / "node_modules" / "@modelcontextprotocol" / "conformance" / "package.json"
    if not (BIN / "node").exists() or not package.exists():
        return f"{TOOLS} has no node or conformance suite ({INSTALL_HINT})"
    version = json.loads(package.read_text())["version"]
    if version != SUITE_VERSION:
        return f"{TOOLS} has conformance {version}, not {SUITE_VERSION} ({INSTALL_HINT})"
    node = subprocess.run([str(BIN / "node"), "--version"], capture_output=True, text=True, timeout=30, check=False)
    major = re.match(r"v(\d+)\.", node.stdout)
    if major is None or int(major.group(1)) < NODE_MAJOR:
        return f"{BIN / 'node'} is {node.stdout.strip() or node.stderr.strip()!r}, the suite needs ≥ {NODE_MAJOR}"
    return None


def _env() -> dict[str, str]:
    # The `conformance` script runs with `#!/usr/bin/env node`: ours must come first on PATH.
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}


def server_scenarios() -> list[str]:
    """Every server scenario the suite knows (`conformance list`), pending ones included."""
    listing = subprocess.run(
        [str(BIN / "conformance"), "list"], capture_output=True, text=True, timeout=60, env=_env(), check=True
    ).stdout
    server_part = listing.split("Client scenarios", 1)[0]
    return re.findall(r"^\s+- (\S+)", server_part, flags=re.MULTILINE)


@dataclass
class Verdict:
    """One scenario's outcome and the checks that were not SUCCESS/INFO."""

    outcome: str
    problems: list[str]


def run_suite(url: str, out_dir: Path, timeout: float = 300) -> dict[str, Verdict]:
    """All server scenarios against `url` (`--suite all`); verdicts by scenario name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "conformance.log"
    with log.open("wb") as sink:
        # The exit code only says whether some scenario failed: the verdicts come from checks.json.
        subprocess.run(
            [str(BIN / "conformance"), "server", "--url", url, "--suite", "all", "-o", str(out_dir)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    verdicts: dict[str, Verdict] = {}
    for checks_file in out_dir.glob("server-*/checks.json"):
        name = re.sub(r"^server-|-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name)
        checks = json.loads(checks_file.read_text())
        statuses = {check["status"] for check in checks}
        outcome = "fail" if "FAILURE" in statuses else "warn" if "WARNING" in statuses else "pass"
        problems = [
            f"{check['status']} {check['id']}: {check.get('errorMessage') or check.get('description', '')}"
            for check in checks
            if check["status"] in {"FAILURE", "WARNING"}
        ]
        verdicts[name] = Verdict(outcome, problems)
    return verdicts


MISSING = Verdict("missing", [])


def table(scenarios: list[str], runs: dict[str, dict[str, Verdict]]) -> str:
    """Scenario by scenario, one column per run, then what each run found wrong."""
    width = max(len(s) for s in scenarios)
    lines = ["  ".join([f"{'scenario':{width}}", *(f"{name:14}" for name in runs)]), "-" * (width + 16 * len(runs))]
    for scenario in scenarios:
        verdicts = {name: run.get(scenario, MISSING) for name, run in runs.items()}
        lines.append("  ".join([f"{scenario:{width}}", *(f"{v.outcome:14}" for v in verdicts.values())]))
        lines.extend(f"    {name}: {problem[:160]}" for name, v in verdicts.items() for problem in v.problems)
    return "\n".join(lines)
