"""`meshgate bootstrap` joins the database of the server on this machine instead of making an empty one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.gateway import MESHGATE


def _default_env(state: Path) -> dict[str, str]:
    """No database, data directory or secrets configured: everything comes from the defaults."""
    dropped = ("MESHGATE_", "DATABASE_URL", "ENCRYPTION_KEY", "XDG_STATE_HOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["XDG_STATE_HOME"] = str(state)
    return env


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESHGATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_bootstrap_elsewhere_uses_the_data_directory_the_server_prepared(tmp_path: Path) -> None:
    server_dir, other_dir = tmp_path / "server", tmp_path / "elsewhere"
    server_dir.mkdir()
    other_dir.mkdir()
    env = _default_env(tmp_path / "state")
    assert _run(server_dir, env, "migrate").returncode == 0  # what `meshgate serve` does first

    made = _run(other_dir, env, "bootstrap", "--email", "far@example.com", "--json")
    assert made.returncode == 0, made.stderr
    assert f"data directory: {server_dir / 'data'} (the one the server last used)" in made.stderr
    assert "api_key" in json.loads(made.stdout)
    assert not (other_dir / "data").exists()

    again = _run(server_dir, env, "bootstrap", "--email", "far@example.com")
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_bootstrap_says_loudly_when_it_makes_a_new_data_directory(tmp_path: Path) -> None:
    env = _default_env(tmp_path / "state")
    made = _run(tmp_path, env, "bootstrap", "--email", "alone@example.com", "--json")
    assert made.returncode == 0, made.stderr
    assert f"WARNING: no meshgate data directory found; creating a new one at {tmp_path / 'data'}" in made.stderr
    assert (tmp_path / "data" / "meshgate.db").is_file()
