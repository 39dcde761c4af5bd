"""pytest plugin for scripts/reliability_report.py: which tests the report runs, and what each one proved.

Loaded with `-p reliability_selection` (scripts/ on PYTHONPATH). Of the collected tests it keeps those under
the paths in MESHGATE_RELIABILITY_SUITES (os.pathsep-separated) and every test marked `finding(n)`, wherever
it lives, so a regression test for the security review is in the report without anyone listing its file.
At the end it writes `findings.json` into MESHGATE_RELIABILITY_OUT: per test, its findings and its outcome.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_RESULTS: dict[str, dict[str, Any]] = {}


def _findings(item: pytest.Item) -> list[int]:
    return sorted({int(mark.args[0]) for mark in item.iter_markers("finding") if mark.args})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suites = [suite for suite in os.environ.get("MESHGATE_RELIABILITY_SUITES", "").split(os.pathsep) if suite]
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        in_suite = any(path == suite or path.startswith(suite.rstrip("/") + "/") for suite in suites)
        findings = _findings(item)
        if in_suite or findings:
            kept.append(item)
            _RESULTS[item.nodeid] = {"findings": findings, "outcome": "not run", "seconds": 0.0}
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    result = _RESULTS.get(report.nodeid)
    if result is None:
        return
    result["seconds"] += report.duration
    if report.failed:
        result["outcome"] = "FAILED" if report.when == "call" else f"ERROR in {report.when}"
    elif report.skipped and not result["outcome"].startswith(("FAILED", "ERROR")):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        result["outcome"] = f"skipped: {reason.removeprefix('Skipped: ')}"
    elif report.when == "call" and report.passed:
        result["outcome"] = "passed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("MESHGATE_RELIABILITY_OUT")
    if out:
        (Path(out) / "findings.json").write_text(json.dumps(_RESULTS, indent=1))
