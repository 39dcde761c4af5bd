"""The `meshgate` command line."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from meshgate import __version__
from meshgate.settings import load_settings
from support.gateway import gateway_env, rpc, run_cli, start_gateway


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run_cli(gateway_env("sqlite:///unused.db", tmp_path), "version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_commands_that_do_not_serve_do_not_load_the_web_app_or_the_mcp_sdk() -> None:
    """The MCP SDK costs over a second of imports; `migrate`, `rotate-key` and `bootstrap` start without it, and
    without the remote commands' HTTP client (`meshgate.remote`, httpx2), which load only when one is run."""
    loaded = "('mcp', 'meshgate.app', 'meshgate.remote', 'httpx2')"
    probe = f"import sys, meshgate.cli; print(sorted(m for m in {loaded} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


_SERVE_PROBE = """
import asyncio, sys
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.app import create_app
from meshgate.cli import _settings

async def prepare():
    db = Database(sys.argv[1])
    try:
        return await apply_migrations(db.engine)
    finally:
        await db.close()

applied = asyncio.run(prepare())
create_app(_settings())
print(applied, sorted(m for m in ("alembic", "mcp") if m in sys.modules))
"""


def test_serving_a_migrated_database_loads_neither_alembic_nor_the_mcp_sdk(tmp_db: str, tmp_path: Path) -> None:
    """What `serve` does before it listens: check the schema (one query when it is current) and build the app.
    Alembic loads only when a migration is pending, the SDK only with the first `/mcp` request."""
    env = gateway_env(tmp_db, tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_PROBE, tmp_db], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_concurrent_first_management_requests_all_get_the_tools(tmp_db: str, tmp_path: Path) -> None:
    """The SDK is loaded by whichever `/mcp` request comes first; the others wait for it, none fails."""
    gateway = start_gateway(tmp_db, tmp_path)
    try:
        owner = gateway.bootstrap("first-calls@example.com")
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"mcp-protocol-version": "2025-11-25"}
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: rpc(gateway.mcp_url, body, key=owner.api_key, headers=headers), range(6)))
        assert [answer.status_code for answer in answers] == [200] * 6
        assert all(any(t["name"] == "API_KEY_CREATE" for t in a.json()["result"]["tools"]) for a in answers)
    finally:
        assert gateway.stop() == 0


def test_bootstrap_prints_json_once_and_fails_cleanly_the_second_time(tmp_db: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_db, tmp_path)
    first = run_cli(env, "bootstrap", "--email", "Ada@Example.com", "--org", "Analytical Engines", "--json")
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    assert set(printed) == {"user_id", "organization_id", "organization_slug", "api_key"}
    assert printed["organization_slug"] == "analytical-engines"
    assert printed["api_key"].startswith("mg_") and len(printed["api_key"]) >= 46

    second = run_cli(env, "bootstrap", "--email", "ada@example.com", "--json")
    assert second.returncode == 1
    assert "a user with email ada@example.com already exists" in second.stderr
    assert "Traceback" not in second.stderr
    assert second.stdout == ""


def test_migrate_applies_once_then_reports_up_to_date(tmp_db: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_db, tmp_path)
    assert "applied 19 migration(s)" in run_cli(env, "migrate").stdout
    assert "up to date" in run_cli(env, "migrate").stdout


def test_missing_secrets_are_generated_once_with_mode_0600_and_a_warning(tmp_path: Path) -> None:
    env = gateway_env(f"sqlite:///{tmp_path / 'g.db'}", tmp_path)
    del env["ENCRYPTION_KEY"], env["MESHGATE_SECRET"]
    first = run_cli(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert "ENCRYPTION_KEY is not set: generated one" in first.stderr
    for name in ("encryption.key", "secret.key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    key_before = (tmp_path / "encryption.key").read_text()
    second = run_cli(env, "migrate")
    assert "generated" not in second.stderr
    assert (tmp_path / "encryption.key").read_text() == key_before


def test_a_different_encryption_key_stops_start_up_with_a_clear_message(tmp_db: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_db, tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    other = gateway_env(tmp_db, tmp_path)  # same database, a new random key
    for command in (["migrate"], ["serve", "--port", "1"]):
        result = run_cli(other, *command)
        assert result.returncode == 1
        assert "is not the key this database was created with" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ENCRYPTION_KEY", "not base64!", "ENCRYPTION_KEY is not valid base64"),
        ("ENCRYPTION_KEY", "c2hvcnQ=", "decodes to 5 bytes; expected exactly 32"),
        ("MESHGATE_SECRET", "short", "MESHGATE_SECRET must be at least 32 characters"),
        ("DATABASE_URL", "oracle://db", "scheme 'oracle' is not supported"),
        ("PORT", "eighty", "PORT='eighty' is not an integer"),
    ],
)
def test_bad_settings_are_refused_with_what_is_allowed(tmp_path: Path, variable: str, value: str, message: str) -> None:
    env = gateway_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, **{variable: value})
    result = run_cli(env, "migrate")
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_never_show_secrets_in_their_repr(tmp_path: Path) -> None:
    settings = load_settings({"MESHGATE_DATA_DIR": str(tmp_path), "MESHGATE_METRICS_TOKEN": "scrape-token-xyz"})
    shown = repr(settings)
    assert "scrape-token-xyz" not in shown
    assert str(settings.encryption_key) not in shown and str(settings.secret) not in shown
