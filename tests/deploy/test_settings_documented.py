"""Every environment variable that `meshgate.settings` reads is documented in the README's settings table, and
the table documents nothing that is no longer read (the variables are taken from the source, not a list)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "src" / "meshgate" / "settings.py"
NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")


def variables_read() -> set[str]:
    """String constants given as the variable name to `env.get(NAME…)` or to a helper called `(env, NAME…)`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func, args = node.func, node.args
        if isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(func.value, ast.Name):
            candidate = args[0] if func.value.id == "env" else None
        elif isinstance(args[0], ast.Name) and args[0].id == "env" and len(args) > 1:
            candidate = args[1]
        else:
            candidate = None
        if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str) and NAME.match(candidate.value):
            found.add(candidate.value)
    return found


def variables_documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Settings (environment)", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


def test_the_settings_module_is_read_as_expected() -> None:
    read = variables_read()
    assert {"DATABASE_URL", "ENCRYPTION_KEY", "MESHGATE_SANDBOX_CONCURRENT", "OTEL_TRACES_EXPORTER"} <= read, read
    assert len(read) > 60, sorted(read)


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = variables_read() - variables_documented()
    assert not missing, f"read by meshgate.settings but not in the README's settings table: {sorted(missing)}"


def test_the_readme_documents_no_setting_that_is_not_read() -> None:
    stale = variables_documented() - variables_read()
    assert not stale, f"in the README's settings table but never read: {sorted(stale)}"
