"""The issuer's signing keys are cached: sign-ins fetch the JWKS once per lifetime, a rotated key (an unknown
`kid`) is fetched again once, and never more than once for one callback. Against the provider process
(tests/support/oidc_provider.py), which counts its `/jwks` requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from meshgate.connections.addresses import AddressPolicy
from meshgate.sso.jwks import LIFETIME_S, JwksCache
from meshgate.sso.oidc import OidcClient
from support.sign_in import browser
from support.sso import IdentityProvider, SsoSetup, identity_provider, sso_gateway, walk

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sso(tmp_db: str, tmp_path: Path) -> AsyncIterator[SsoSetup]:
    async with sso_gateway(tmp_db, tmp_path) as setup:
        yield setup


async def _jwks_requests(provider: IdentityProvider) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{provider.issuer}/test/jwks-requests")).json()["count"])


async def _rotate(provider: IdentityProvider) -> str:
    async with httpx.AsyncClient() as http:
        return str((await http.post(f"{provider.issuer}/test/rotate")).json()["kid"])


async def _signs_in(setup: SsoSetup, email: str) -> None:
    async with browser(setup.gateway) as http:
        done = await walk(http, setup, email)
        assert done.answer.status_code == 303, done.answer.text
        assert (await http.get("/app/account")).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_two_sign_ins_fetch_the_jwks_once_and_a_rotated_key_is_picked_up(sso: SsoSetup) -> None:
    email = f"p-{uuid.uuid4().hex[:10]}@sso.example"
    assert await _jwks_requests(sso.provider) == 0
    await _signs_in(sso, email)
    await _signs_in(sso, email)
    assert await _jwks_requests(sso.provider) == 1

    assert await _rotate(sso.provider) == "k2"  # the old key is gone from the provider's JWKS
    await _signs_in(sso, email)
    assert await _jwks_requests(sso.provider) == 2
    await _signs_in(sso, email)
    assert await _jwks_requests(sso.provider) == 2


async def test_the_cache_lives_for_its_lifetime_and_fetches_at_most_once_per_call() -> None:
    now = [1_000_000.0]
    with identity_provider("http://127.0.0.1:1/sso/callback") as provider:
        client = OidcClient(AddressPolicy(block_private=False))
        metadata = await client.discover(provider.issuer)
        cache = JwksCache(client, clock=lambda: now[0])

        first = await cache.keys(metadata, "k1")
        assert [key.key_id for key in first.keys] == ["k1"]
        assert (await cache.keys(metadata, "k1")) is first and (await cache.keys(metadata, None)) is first
        assert await _jwks_requests(provider) == 1

        now[0] += LIFETIME_S - 1
        await cache.keys(metadata, "k1")
        assert await _jwks_requests(provider) == 1
        now[0] += 1  # the lifetime is over
        await cache.keys(metadata, "k1")
        assert await _jwks_requests(provider) == 2

        # A kid the provider does not publish: one fetch per call, and the answer still lacks it.
        unknown = await cache.keys(metadata, "nobody")
        assert [key.key_id for key in unknown.keys] == ["k1"]
        assert await _jwks_requests(provider) == 3

        await _rotate(provider)
        rotated = await cache.keys(metadata, "k2")
        assert [key.key_id for key in rotated.keys] == ["k2"]
        assert await _jwks_requests(provider) == 4
        assert (await cache.keys(metadata, "k2")) is rotated
        assert await _jwks_requests(provider) == 4
