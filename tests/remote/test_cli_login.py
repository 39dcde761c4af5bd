"""`meshgate login`: an API key, or OAuth with PKCE through the browser (httpx plays the browser on the real
gateway's login and consent pages); the credentials file is private; tokens are refreshed on use."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from support.gateway import MESHGATE, Gateway
from support.oauth import Browser, new_person
from support.remote import client_env, credentials_file, remote, store, stored
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio


def test_login_with_an_api_key_stores_it_privately_and_calls_use_it(gateway: Gateway, tmp_path: Path) -> None:
    owner = gateway.bootstrap(f"cli-key-{tmp_path.name}@example.com")
    result = remote(tmp_path, "login", gateway.url, "--api-key", owner.api_key)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(credentials_file(tmp_path).stat().st_mode) == 0o600
    assert stored(tmp_path)["servers"][gateway.url]["api_key"] == owner.api_key
    listed = remote(tmp_path, "call", "ORGANIZATION_GET")
    assert listed.returncode == 0, listed.stderr
    assert owner.organization_id in listed.stdout


def test_login_with_a_wrong_api_key_exits_3_and_stores_nothing(gateway: Gateway, tmp_path: Path) -> None:
    result = remote(tmp_path, "login", gateway.url, "--api-key", "mg_not-a-real-key-at-all-0000000000000000")
    assert result.returncode == 3
    assert "refused the credentials" in result.stderr and "Traceback" not in result.stderr
    assert not credentials_file(tmp_path).exists()


def test_commands_without_a_login_exit_3_with_what_to_do(tmp_path: Path) -> None:
    result = remote(tmp_path, "call", "ORGANIZATION_GET")
    assert result.returncode == 3
    assert "run `meshgate login URL`" in result.stderr


def test_an_unreachable_gateway_exits_4(tmp_path: Path) -> None:
    result = remote(tmp_path, "login", "http://127.0.0.1:1", "--api-key", "mg_whatever")
    assert result.returncode == 4
    assert "cannot reach http://127.0.0.1:1" in result.stderr


async def _log_in_through_the_browser(gateway: Gateway, config: Path) -> str:
    """Runs `meshgate login --no-browser`, answers the consent like a person would; returns the user id."""
    person = await new_person(gateway, org="CLI Login Org")
    process = subprocess.Popen(  # noqa: ASYNC220  (spawning returns at once; its output is read in a thread)
        [*MESHGATE, "login", gateway.url, "--no-browser", "--timeout", "60"],
        env=client_env(config),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        address = ""
        with anyio.fail_after(30):
            while not address.startswith("http"):
                line = await anyio.to_thread.run_sync(process.stderr.readline)
                assert line, "login ended before printing the address"
                address = line.strip()
        browser = Browser(person, organization_id=person.organization_id)
        redirect = await browser.authorize(address)
        assert redirect.status_code == 302, redirect.text[:300]
        location = redirect.headers["location"]
        assert location.startswith("http://127.0.0.1:") and "/callback?" in location
        back = await anyio.to_thread.run_sync(lambda: httpx.get(location, timeout=30))
        assert back.status_code == 200
        code = await anyio.to_thread.run_sync(lambda: process.wait(60))
        rest = process.stderr.read()
        assert code == 0, rest
        assert f"logged in to {gateway.url}" in rest
    finally:
        if process.poll() is None:
            process.kill()
    return person.user_id


async def test_login_through_the_browser_with_pkce_stores_tokens_for_the_management_endpoint(
    gateway: Gateway, tmp_path: Path
) -> None:
    await _log_in_through_the_browser(gateway, tmp_path)
    assert stat.S_IMODE(credentials_file(tmp_path).stat().st_mode) == 0o600
    entry = stored(tmp_path)["servers"][gateway.url]
    tokens = entry["tokens"]["/mcp"]
    remember_secret(tokens["access_token"])
    remember_secret(tokens["refresh_token"])
    assert entry["client_id"] and entry["api_key"] is None
    result = remote(tmp_path, "call", "ORGANIZATION_GET", "--output", "table")
    assert result.returncode == 0, result.stderr
    assert "CLI Login Org" in result.stdout


async def test_an_expired_or_refused_access_token_is_refreshed_and_the_new_one_saved(
    gateway: Gateway, tmp_path: Path
) -> None:
    await _log_in_through_the_browser(gateway, tmp_path)
    data = stored(tmp_path)
    tokens = data["servers"][gateway.url]["tokens"]["/mcp"]
    first_refresh = tokens["refresh_token"]
    remember_secret(tokens["access_token"])
    remember_secret(first_refresh)

    tokens["expires_at"] = 0  # expired long ago: refreshed before the call
    store(tmp_path, data)
    assert remote(tmp_path, "call", "ORGANIZATION_GET").returncode == 0
    after_expiry = stored(tmp_path)["servers"][gateway.url]["tokens"]["/mcp"]
    remember_secret(after_expiry["access_token"])
    remember_secret(after_expiry["refresh_token"])
    assert after_expiry["refresh_token"] != first_refresh
    assert after_expiry["expires_at"] > 0
    assert stat.S_IMODE(credentials_file(tmp_path).stat().st_mode) == 0o600

    data = stored(tmp_path)
    data["servers"][gateway.url]["tokens"]["/mcp"]["access_token"] = "not-a-token-the-gateway-knows"
    store(tmp_path, data)  # unexpired but refused: one refresh, then the call again
    again = remote(tmp_path, "call", "ORGANIZATION_GET")
    assert again.returncode == 0, again.stderr
    after_refusal = stored(tmp_path)["servers"][gateway.url]["tokens"]["/mcp"]
    remember_secret(after_refusal["access_token"])
    remember_secret(after_refusal["refresh_token"])
    assert after_refusal["refresh_token"] != after_expiry["refresh_token"]

    data = stored(tmp_path)
    data["servers"][gateway.url]["tokens"]["/mcp"].update(access_token="bad", refresh_token=first_refresh)
    store(tmp_path, data)  # a used-up refresh token: the login is over
    over = remote(tmp_path, "call", "ORGANIZATION_GET")
    assert over.returncode == 3
    assert "run `meshgate login` again" in over.stderr
