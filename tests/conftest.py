"""Shared fixtures: a real gateway process per database backend, and fresh organizations in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from meshgate.bootstrap import bootstrap_owner
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.identity.service import ApiKeyService, MemberService, UserService
from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.databases import BACKENDS, fresh_database
from support.events import start_subscriber
from support.gateway import Gateway, Owner, Upstream, start_gateway, start_upstream
from support.mcp_client import call, connect
from support.secrets import SECRETS, remember_secret


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole run: grep every gateway log for every secret the tests used."""
    yield
    logs = list(tmp_path_factory.getbasetemp().rglob("*.log"))
    leaks = [
        f"{path.name}: {secret[:6]}…"
        for path in logs
        for secret in SECRETS
        if len(secret) >= 8 and secret in path.read_text(errors="replace")
    ]
    assert not leaks, f"secrets found in gateway logs: {leaks}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def gateway(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One `meshgate serve` process per backend, shared by the tests that only need a gateway."""
    tmp = tmp_path_factory.mktemp(f"gw-{backend}")
    with fresh_database(backend, tmp) as url:
        gw = start_gateway(url, tmp)
        try:
            yield gw
        finally:
            code = gw.stop()
            assert code == 0, f"gateway exited with {code}:\n{gw.logs()}"


@pytest.fixture
def tmp_db(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on the current backend."""
    with fresh_database(backend, tmp_path) as url:
        yield url


async def new_owner(gateway: Gateway, org: str = "Acme") -> Owner:
    """A new user who owns a new organization, with an owner API key (what `meshgate bootstrap` does)."""
    result = await bootstrap_owner(
        gateway.env["DATABASE_URL"], email=f"owner-{uuid.uuid4().hex[:10]}@example.com", password=None, org_name=org
    )
    remember_secret(result.api_key)
    return Owner(**result.to_dict())


async def key_for_user(gateway: Gateway, organization_id: str, user_id: str, permissions: Any = None) -> str:
    """An API key for a member who has no credential yet (in production they log in with OAuth)."""
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            _key, value = await ApiKeyService(session, organization_id).create(
                user_id, "member", permissions=permissions
            )
    finally:
        await db.close()
    return remember_secret(value)


@dataclass(frozen=True)
class Joined:
    member_id: str
    user_id: str
    email: str
    api_key: str


async def new_member(gateway: Gateway, organization_id: str, role: str, user_id: str | None = None) -> Joined:
    """A member with `role` (a new user unless `user_id` is given) and an API key of theirs.

    Through the services: the management tools only invite, and the person accepts (tests/identity)."""
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            users = UserService(session)
            user = await users.get(user_id) if user_id else await users.create(f"m-{uuid.uuid4().hex[:10]}@example.com")
            assert user is not None
            member = await MemberService(session, organization_id).add(user.id, role)
            _key, value = await ApiKeyService(session, organization_id).create(user.id, "member")
    finally:
        await db.close()
    return Joined(member.id, user.id, user.email, remember_secret(value))


@pytest.fixture(scope="session")
def web_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway on SQLite only, for the dashboard's tests: its logic does not depend on the backend, and a
    browser suite per backend would add minutes to a run that already takes many."""
    tmp = tmp_path_factory.mktemp("gw-web")
    with fresh_database("sqlite", tmp) as url:
        gw = start_gateway(url, tmp)
        try:
            yield gw
        finally:
            code = gw.stop()
            assert code == 0, f"gateway exited with {code}:\n{gw.logs()}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never `playwright install`); skipped without it, failed in CI.

    Module-scoped: Playwright's sync API runs an event loop on this thread, which async tests need back."""
    require_chromium()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  (only browser tests pay for the import)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """A shared SDK-built upstream MCP server (SSE answers) that requires its own bearer token."""
    server = start_upstream(token=remember_secret("upstream-secret-token-1"))
    yield server
    server.kill()


async def add_connection(gateway: Gateway, key: str, upstream: Upstream, **data: Any) -> dict[str, Any]:
    """Register `upstream` as an HTTP connection through the management tools."""
    fields: dict[str, Any] = {
        "title": "Upstream",
        "connection_type": "HTTP",
        "connection_url": upstream.url,
        "connection_token": upstream.token,
    }
    fields.update(data)
    async with connect(gateway.mcp_url, key) as client:
        return await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": fields})


async def wait_for_logs(gateway: Gateway, key: str, count: int, **filters: Any) -> list[dict[str, Any]]:
    """Audit records are written by a background task: poll until `count` match, with a deadline."""
    with anyio.fail_after(15):
        while True:
            async with connect(gateway.mcp_url, key) as client:
                logs = await call(client, "MONITORING_LOGS_LIST", {**filters, "limit": 1000})
            if len(logs["items"]) >= count:
                return list(logs["items"])
            await anyio.sleep(0.05)


@pytest.fixture
def subscriber() -> Iterator[Upstream]:
    """An SDK-built ON_EVENTS server that event bus tests deliver to (tests/support/event_subscriber.py)."""
    yield from start_subscriber()


@pytest.fixture
async def db(tmp_db: str) -> AsyncIterator[Database]:
    """A migrated, empty database on the current backend (for tests that use the services directly)."""
    database = Database(tmp_db)
    await apply_migrations(database.engine)
    yield database
    await database.close()
