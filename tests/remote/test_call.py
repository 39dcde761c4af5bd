"""`meshgate call` and the friendly commands: JSON and table output, clear errors and exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from support.gateway import Gateway, Upstream
from support.remote import remote, stored


@pytest.fixture
def logged_in(gateway: Gateway, tmp_path: Path) -> Path:
    owner = gateway.bootstrap(f"cli-call-{tmp_path.name}@example.com")
    assert remote(tmp_path, "login", gateway.url, "--api-key", owner.api_key).returncode == 0
    return tmp_path


def test_call_prints_the_structured_result_as_json(logged_in: Path) -> None:
    result = remote(logged_in, "call", "API_KEY_CREATE", "--arg", "name=from-cli", "--arg", "expiresIn=3600")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["name"] == "from-cli"
    listed = json.loads(remote(logged_in, "call", "API_KEY_LIST", "--json", "{}").stdout)
    assert "from-cli" in {key["name"] for key in listed["items"]}


def test_table_output_has_a_header_and_one_line_per_item(logged_in: Path) -> None:
    remote(logged_in, "keys", "create", "table-key")
    result = remote(logged_in, "call", "API_KEY_LIST", "--output", "table")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert {"ID", "NAME"} <= set(lines[0].split())
    assert any("table-key" in line for line in lines[1:])
    assert not result.stdout.lstrip().startswith("{")


def test_connections_are_created_listed_tested_and_deleted(logged_in: Path, upstream: Upstream) -> None:
    created = remote(
        logged_in, "connections", "create", "--title", "From CLI", "--url", upstream.url, "--token", upstream.token,
        "-o", "json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    connection_id = json.loads(created.stdout)["id"]
    listed = remote(logged_in, "connections", "list")
    assert connection_id in listed.stdout and "From CLI" in listed.stdout
    tested = json.loads(remote(logged_in, "connections", "test", connection_id, "-o", "json").stdout)
    assert tested["healthy"] is True
    assert remote(logged_in, "connections", "delete", connection_id).returncode == 0
    assert connection_id not in remote(logged_in, "connections", "list").stdout


def test_members_list_shows_the_owner(logged_in: Path) -> None:
    result = remote(logged_in, "members", "list", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [member["role"] for member in json.loads(result.stdout)["items"]] == ["owner"]


def test_logs_show_the_calls_made_through_a_connection(gateway: Gateway, logged_in: Path, upstream: Upstream) -> None:
    created = remote(logged_in, "connections", "create", "--title", "Logged", "--url", upstream.url,
                     "--token", upstream.token, "-o", "json")  # fmt: skip
    connection_id = json.loads(created.stdout)["id"]
    key = stored(logged_in)["servers"][gateway.url]["api_key"]
    called = httpx.post(f"{gateway.url}/mcp/{connection_id}/call-tool/echo", json={"text": "logged"},
                        headers={"authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    assert called.status_code == 200, called.text
    deadline = time.monotonic() + 30  # the audit writer flushes in the background
    while True:
        shown = remote(logged_in, "logs", "--connection", connection_id, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        if json.loads(shown.stdout)["items"] or time.monotonic() > deadline:
            break
    assert json.loads(shown.stdout)["items"], "no audit entry for the connection's calls"
    table = remote(logged_in, "logs", "--connection", connection_id)
    assert "CREATEDAT" in table.stdout and "TOOLNAME" in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["call", "API_KEY_CREATE", "--json", "{not json"], 2, "--json is not valid JSON"),
        (["call", "API_KEY_CREATE", "--json", "[1]"], 2, "--json must be a JSON object"),
        (["call", "API_KEY_CREATE", "--arg", "name"], 2, "--arg 'name' is not key=value"),
        (["call", "API_KEY_CREATE", "--output", "xml"], 2, "Invalid value for '--output'"),
        (["call", "NO_SUCH_TOOL"], 1, "NO_SUCH_TOOL"),
        (["call", "API_KEY_DELETE", "--arg", "keyId=missing"], 1, "API_KEY_DELETE:"),
    ],
)
def test_bad_input_gives_a_clear_error_and_a_non_zero_exit_code(
    logged_in: Path, args: list[str], code: int, message: str
) -> None:
    result = remote(logged_in, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_and_version_work_on_every_remote_command(tmp_path: Path) -> None:
    for command in (
        ["login"],
        ["call"],
        ["connections", "list"],
        ["keys", "create"],
        ["members"],
        ["connect"],
        ["logs"],
    ):
        assert remote(tmp_path, *command, "-h").returncode == 0
        version = remote(tmp_path, *command, "--version")
        assert version.returncode == 0 and version.stdout.strip() == remote(tmp_path, "version").stdout.strip()
