"""The open ways in to the client registry are bounded per client address: dynamic registration by a rate and
a daily count, client ID metadata document fetches by a rate; dynamic clients nobody authorized go after a
day. On a real database, with the registry's clocks injected."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from meshgate.access.ratelimit import Rate
from meshgate.connections.addresses import AddressPolicy
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.errors import OAuthError, RateLimited
from meshgate.identity.service import OrganizationService, UserService
from meshgate.oauth.access_tokens import AccessTokens
from meshgate.oauth.clients import DOCUMENT_UNAVAILABLE, ClientLimits, ClientRegistry, Registration
from meshgate.oauth.service import Authorization, AuthorizationService
from meshgate.vault import Vault
from support.gateway import free_port
from support.oauth import REDIRECT_URI
from support.secrets import remember_secret
from support.served import TestClock, served_gateway

pytestmark = pytest.mark.anyio
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ONE_PER_HOUR = Rate(per_second=1 / 3600, burst=3)
GENEROUS = Rate(per_second=100, burst=100)


class Clocks:
    """A monotonic clock and a UTC clock that move together, only when the test says so."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def utc(self) -> datetime:
        return START + timedelta(seconds=self.elapsed)


@pytest.fixture
async def db(tmp_db: str) -> AsyncIterator[Database]:
    database = Database(tmp_db)
    await apply_migrations(database.engine)
    yield database
    await database.close()


def _registry(
    clocks: Clocks,
    *,
    document_rate: Rate = GENEROUS,
    register_rate: Rate = GENEROUS,
    registrations_per_day: int = 1000,
) -> ClientRegistry:
    limits = ClientLimits(document_rate, register_rate, registrations_per_day)
    return ClientRegistry(AddressPolicy(block_private=False), limits, clock=clocks.monotonic, now=clocks.utc)


REGISTRATION = Registration.parse(
    {"client_name": "limited", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
)


async def _register(db: Database, registry: ClientRegistry, address: str) -> str:
    async with db.transaction() as session:
        answer, _secret = await registry.register(session, REGISTRATION, address)
    return str(answer["client_id"])


async def _exists(db: Database, registry: ClientRegistry, client_id: str) -> bool:
    async with db.transaction() as session:
        try:
            await registry.find(session, client_id, "127.0.0.1")
        except OAuthError:
            return False
    return True


@pytest.mark.finding(21)
async def test_registrations_from_one_address_are_rate_limited(db: Database) -> None:
    clocks = Clocks()
    registry = _registry(clocks, register_rate=ONE_PER_HOUR)
    for _ in range(3):
        await _register(db, registry, "127.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await _register(db, registry, "127.0.0.1")
    assert "registrations" in limited.value.message and 0 < limited.value.retry_after <= 3600
    await _register(db, registry, "127.0.0.2")  # another address has its own budget
    clocks.elapsed += 3600
    await _register(db, registry, "127.0.0.1")  # the bucket refilled


@pytest.mark.finding(21)
async def test_registrations_from_one_address_are_counted_per_day(db: Database) -> None:
    clocks = Clocks()
    registry = _registry(clocks, registrations_per_day=2)
    await _register(db, registry, "127.0.0.1")
    clocks.elapsed += 3600
    await _register(db, registry, "127.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await _register(db, registry, "127.0.0.1")
    assert "within a day" in limited.value.message
    assert limited.value.retry_after == pytest.approx(23 * 3600)  # when the first one leaves the window
    restarted = _registry(clocks, registrations_per_day=2)  # the count is in the database, not in memory
    with pytest.raises(RateLimited):
        await _register(db, restarted, "127.0.0.1")
    clocks.elapsed += 23 * 3600 + 1
    await _register(db, restarted, "127.0.0.1")


@pytest.mark.finding(21)
async def test_dynamic_clients_nobody_authorized_are_deleted_after_a_day(db: Database) -> None:
    clocks = Clocks()
    registry = _registry(clocks)
    unused = await _register(db, registry, "127.0.0.1")
    authorized = await _register(db, registry, "127.0.0.1")
    async with db.transaction() as session:
        user = await UserService(session).create("limits@example.com")
        org = await OrganizationService(session).create("Limits", user.id)
        tokens = AccessTokens(remember_secret("s" * 40).encode(), "http://127.0.0.1", 900)
        await AuthorizationService(session, tokens, 3600, Vault(secrets.token_bytes(32))).issue_code(
            Authorization(authorized, user.id, org.id, REDIRECT_URI, "c" * 43, "http://127.0.0.1/mcp", None, None)
        )
        admin_made, _secret = await registry.create_registered(session, org.id, "by hand", [REDIRECT_URI], False)
    clocks.elapsed += 24 * 3600 - 1
    fresh = await _register(db, registry, "127.0.0.1")  # registering is when the old ones are swept
    assert await _exists(db, registry, unused)
    clocks.elapsed += 2
    async with db.transaction() as session:
        assert await registry.delete_unused(session) == 1
    assert not await _exists(db, registry, unused)
    assert await _exists(db, registry, authorized) and await _exists(db, registry, admin_made.client_id)
    assert await _exists(db, registry, fresh)
    clocks.elapsed += 24 * 3600
    await _register(db, registry, "127.0.0.2")
    assert not await _exists(db, registry, fresh) and await _exists(db, registry, authorized)


@pytest.mark.finding(10)
async def test_metadata_document_fetches_are_rate_limited_per_address(db: Database) -> None:
    clocks = Clocks()
    registry = _registry(clocks, document_rate=Rate(per_second=1 / 60, burst=2))
    client_id = f"https://127.0.0.1:{free_port()}/client.json"  # nothing listens there
    async with db.transaction() as session:
        for _ in range(2):
            with pytest.raises(OAuthError) as refused:
                await registry.find(session, client_id, "127.0.0.1")
            assert refused.value.message == DOCUMENT_UNAVAILABLE
        with pytest.raises(RateLimited) as limited:
            await registry.find(session, client_id, "127.0.0.1")
        assert "metadata document fetches" in limited.value.message
        with pytest.raises(OAuthError):  # another address still gets its fetch
            await registry.find(session, client_id, "127.0.0.2")
        clocks.elapsed += 60
        with pytest.raises(OAuthError):
            await registry.find(session, client_id, "127.0.0.1")


@pytest.mark.finding(21)
@pytest.mark.finding(10)
async def test_the_limits_answer_429_with_retry_after_over_http(tmp_db: str, tmp_path: Path) -> None:
    limits = {"MESHGATE_OAUTH_REGISTER_RATE": "1/hour,burst=2", "MESHGATE_OAUTH_CIMD_RATE": "1/hour,burst=1"}
    async with (
        served_gateway(tmp_db, tmp_path, TestClock(), **limits) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http,
    ):
        body = {"client_name": "limited", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
        assert [(await http.post("/oauth/register", json=body)).status_code for _ in range(2)] == [201, 201]
        refused = await http.post("/oauth/register", json=body)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert refused.json()["error"] == "rate_limited"
        params = {
            "response_type": "code",
            "client_id": f"https://127.0.0.1:{free_port()}/client.json",
            "redirect_uri": REDIRECT_URI,
            "code_challenge": "c" * 43,
            "code_challenge_method": "S256",
            "resource": gateway.mcp_url,
        }
        first = await http.get("/oauth/authorize", params=params)
        assert first.status_code == 400 and DOCUMENT_UNAVAILABLE in first.text
        second = await http.get("/oauth/authorize", params=params)
        assert second.status_code == 429 and "retry-after" in second.headers
