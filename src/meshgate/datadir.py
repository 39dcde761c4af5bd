"""Which data directory a `meshgate` command on this machine should use when none is configured.

`MESHGATE_DATA_DIR` defaults to `./data`, relative to where the command runs, so `meshgate bootstrap` run
from another directory used to create a second, empty database (with its own keys) that the server never
sees. Commands that prepare a server's default SQLite database (`serve`, `migrate`, `rotate-key`) record its
data directory in `$XDG_STATE_HOME/meshgate/data-dir`; `bootstrap` without settings uses `./data` when it
holds a database, else the recorded one, and says loudly when it has to make a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATABASE_FILE = "meshgate.db"


def state_file(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "meshgate" / "data-dir"


def uses_default_database(env: Mapping[str, str]) -> bool:
    return not env.get("DATABASE_URL")


def record(env: Mapping[str, str], data_dir: Path) -> None:
    """Remember the data directory of a server's default database (best effort: a read-only home is fine)."""
    if not uses_default_database(env):
        return
    path = state_file(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(data_dir.resolve()) + "\n")
    except OSError:
        return


@dataclass(frozen=True, slots=True)
class Choice:
    data_dir: Path | None  # None: keep what the settings say
    note: str  # what to tell the person (on stderr)


def choose(env: Mapping[str, str], cwd: Path) -> Choice:
    """The data directory for a command that should join an existing server's database."""
    if env.get("MESHGATE_DATA_DIR") or not uses_default_database(env):
        configured = env.get("MESHGATE_DATA_DIR") or "./data"
        return Choice(None, f"data directory: {Path(configured).resolve()} (from the environment)")
    local = (cwd / "data").resolve()
    if (local / DATABASE_FILE).is_file():
        return Choice(local, f"data directory: {local}")
    try:
        recorded = Path(state_file(env).read_text().strip())
    except OSError:
        recorded = None
    if recorded is not None and (recorded / DATABASE_FILE).is_file():
        return Choice(recorded, f"data directory: {recorded} (the one the server last used)")
    return Choice(
        local,
        f"WARNING: no meshgate data directory found; creating a new one at {local}. A server started "
        f"elsewhere will not see this user: start it from {cwd} or set MESHGATE_DATA_DIR={local}",
    )
