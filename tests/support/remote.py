"""Running the remote side of the `meshgate` command (login, call, connect) with its own config directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from support.gateway import MESHGATE


def client_env(config: Path, **extra: str) -> dict[str, str]:
    """An environment whose XDG config directory is `config` (nothing from the person running the tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHGATE_", "XDG_CONFIG_HOME"))}
    env["XDG_CONFIG_HOME"] = str(config)
    env.update(extra)
    return env


def remote(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MESHGATE, *args], env=client_env(config), capture_output=True, text=True, timeout=timeout, check=False
    )


def credentials_file(config: Path) -> Path:
    return config / "meshgate" / "credentials.json"


def stored(config: Path) -> dict[str, Any]:
    return json.loads(credentials_file(config).read_text())


def store(config: Path, data: dict[str, Any]) -> None:
    credentials_file(config).write_text(json.dumps(data))
