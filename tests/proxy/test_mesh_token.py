"""`x-mesh-token`: an upstream verifies it with nothing but the gateway's JWKS, it names exactly the caller's
credential and grant, and signing keys rotate (publish-ahead, retire after their tokens expire) on every
replica alike."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import add_connection, key_for_user, new_owner
from meshgate.access import Principal
from meshgate.calls.mesh_keys import MeshSigningKeys
from meshgate.calls.mesh_token import MeshTokenIssuer
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.vault import Vault
from support.gateway import Gateway, Upstream, free_port
from support.mcp_client import connect
from support.oauth import HandClient, new_person

pytestmark = pytest.mark.anyio


# --- what an upstream does ------------------------------------------------------------------------------------


def jwks_url(gateway_url: str) -> str:
    return f"{gateway_url}/.well-known/jwks.json"


def verify_sync(gateway_url: str, token: str, audience: str) -> dict[str, Any]:
    """An upstream's whole check: the key the token names, from the gateway's JWKS; EdDSA only."""
    key = jwt.PyJWKClient(jwks_url(gateway_url), cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["EdDSA"], audience=audience, issuer=gateway_url)


async def verify(gateway_url: str, token: str, audience: str) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(verify_sync, gateway_url, token, audience)


async def mesh_token_seen(url: str, key: str) -> str:
    """Call the upstream's `headers` tool through meshgate; the x-mesh-token of that very request."""
    async with connect(url, key) as client:
        seen = (await client.call_tool("headers", {})).structured_content
    assert seen is not None
    return str(seen["requests"][-1]["x-mesh-token"])


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638, computed here independently of meshgate."""
    canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.finding(6)
async def test_the_jwks_is_public_cacheable_and_holds_only_ed25519_public_keys(gateway: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(jwks_url(gateway.url))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    keys = answer.json()["keys"]
    assert keys
    for jwk in keys:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}  # no private member ("d")
        assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
        assert jwk["kid"] == thumbprint(jwk)


@pytest.mark.finding(6)
async def test_an_upstream_verifies_the_mesh_token_with_only_the_gateways_jwks(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    token = await mesh_token_seen(f"{gateway.url}/mcp/{conn['id']}", owner.api_key)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("EdDSA", "mesh+jwt")
    claims = await verify(gateway.url, token, conn["id"])
    assert (claims["sub"], claims["org"], claims["connection"]) == (owner.user_id, owner.organization_id, conn["id"])
    assert claims["caller"]["type"] == "api_key" and claims["caller"]["key_id"]
    assert (claims["grant_id"], claims["client_id"]) == (None, None)
    assert claims["permissions"] == ["*"]
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) >= 16


@pytest.mark.finding(6)
async def test_a_token_from_another_key_or_algorithm_does_not_verify(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    real = await mesh_token_seen(f"{gateway.url}/mcp/{conn['id']}", owner.api_key)
    claims = await verify(gateway.url, real, conn["id"])
    kid = jwt.get_unverified_header(real)["kid"]
    escalated = {**claims, "role": "owner", "permissions": ["*"]}
    impostor = Ed25519PrivateKey.generate()
    same_kid = jwt.encode(escalated, impostor, algorithm="EdDSA", headers={"kid": kid, "typ": "mesh+jwt"})
    with pytest.raises(jwt.InvalidSignatureError):
        await verify(gateway.url, same_kid, conn["id"])
    own_kid = jwt.encode(escalated, impostor, algorithm="EdDSA", headers={"kid": "impostor", "typ": "mesh+jwt"})
    with pytest.raises(jwt.PyJWKClientError):
        await verify(gateway.url, own_kid, conn["id"])
    old_style = jwt.encode(escalated, gateway.env["MESHGATE_SECRET"], algorithm="HS256", headers={"kid": kid})
    with pytest.raises(jwt.InvalidTokenError):
        await verify(gateway.url, old_style, conn["id"])


@pytest.mark.finding(7)
async def test_narrow_and_broad_oauth_grants_of_one_user_send_their_own_permissions(
    gateway: Gateway, upstream: Upstream
) -> None:
    person = await new_person(gateway)
    conn = await add_connection(gateway, person.api_key, upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"
    client = await HandClient.register(gateway)
    broad = (await client.tokens(person, resource=url))["access_token"]
    narrow = (await client.tokens(person, resource=url, scope=f"{conn['id']}:headers"))["access_token"]
    broad_token = await mesh_token_seen(url, broad)  # the broad grant first, as in the security review
    narrow_token = await mesh_token_seen(url, narrow)
    broad_claims = await verify(gateway.url, broad_token, conn["id"])
    narrow_claims = await verify(gateway.url, narrow_token, conn["id"])
    assert broad_claims["permissions"] == ["*"]
    assert narrow_claims["permissions"] == ["headers"]
    assert broad_claims["grant_id"] and narrow_claims["grant_id"]
    assert broad_claims["grant_id"] != narrow_claims["grant_id"]
    assert broad_claims["client_id"] == narrow_claims["client_id"] == client.client_id
    assert broad_claims["caller"] == narrow_claims["caller"] == {"type": "oauth", "key_id": None}
    assert broad_claims["sub"] == narrow_claims["sub"] == person.user_id


@pytest.mark.finding(7)
async def test_an_api_key_with_narrowed_permissions_sends_them_and_the_full_key_does_not(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"
    narrow_key = await key_for_user(
        gateway, owner.organization_id, owner.user_id, permissions={conn["id"]: ["headers", "echo"]}
    )
    full = await verify(gateway.url, await mesh_token_seen(url, owner.api_key), conn["id"])
    narrow = await verify(gateway.url, await mesh_token_seen(url, narrow_key), conn["id"])
    assert full["permissions"] == ["*"]
    assert narrow["permissions"] == ["echo", "headers"]
    assert narrow["caller"]["type"] == "api_key"
    assert narrow["caller"]["key_id"] != full["caller"]["key_id"]


@pytest.mark.finding(6)
async def test_every_replica_signs_with_keys_that_every_replica_publishes(
    gateway: Gateway, upstream: Upstream, tmp_path: Path
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    second = Gateway(env=gateway.env, port=free_port()).start(tmp_path / "second.log")
    try:
        token = await mesh_token_seen(f"{second.url}/mcp/{conn['id']}", owner.api_key)
        async with httpx.AsyncClient() as http:
            first_jwks = (await http.get(jwks_url(gateway.url))).json()
            second_jwks = (await http.get(jwks_url(second.url))).json()
    finally:
        assert second.stop() == 0
    assert first_jwks == second_jwks
    key = jwt.PyJWKSet.from_dict(first_jwks)[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, key, algorithms=["EdDSA"], audience=conn["id"])["sub"] == owner.user_id


# --- the key set, on a real database with an injected clock ---------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


PRINCIPAL = Principal(
    user_id="u-1", organization_id="o-1", organization_slug="o", role="owner", grants=({"*": ["*"]},), api_key_id="k"
)
START = 1_900_000_000.0


@asynccontextmanager
async def replicas(url: str, count: int) -> AsyncIterator[tuple[Clock, list[MeshSigningKeys]]]:
    """`count` key sets on one migrated database, each with its own connection pool, sharing a clock."""
    clock = Clock(START)
    vault_key = os.urandom(32)
    databases = [Database(url) for _ in range(count)]
    try:
        await apply_migrations(databases[0].engine)
        yield clock, [MeshSigningKeys(db, Vault(vault_key), clock=clock) for db in databases]
    finally:
        for db in databases:
            await db.close()


def kids(keys: MeshSigningKeys) -> list[str]:
    return [jwk["kid"] for jwk in keys.jwks()["keys"]]


def signature_valid(keys: MeshSigningKeys, token: str) -> bool:
    """Signature and audience against the published set (the clock here is fake, so PyJWT's own time checks
    are off; when a key stops being published is what these tests assert)."""
    published = jwt.PyJWKSet.from_dict(keys.jwks())
    kid: str = jwt.get_unverified_header(token)["kid"]
    if kid not in [key.key_id for key in published.keys]:
        return False
    options: Any = {"verify_exp": False, "verify_iat": False}
    jwt.decode(token, published[kid], algorithms=["EdDSA"], audience="c-1", options=options)
    return True


@pytest.mark.finding(6)
async def test_the_first_key_is_created_once_and_signs_at_once(tmp_db: str) -> None:
    async with replicas(tmp_db, 2) as (_clock, (first, second)):
        await first.refresh()
        await second.refresh()
        assert kids(first) == kids(second) == [first.signing_key().kid]
        assert second.signing_key().kid == first.signing_key().kid


@pytest.mark.finding(6)
async def test_a_successor_is_published_on_every_replica_before_it_signs(tmp_db: str) -> None:
    async with replicas(tmp_db, 2) as (clock, (first, second)):
        await first.refresh()
        await second.refresh()
        old = first.signing_key().kid
        times = first.times
        clock.now = START + times.rotate_every_s - times.publish_ahead_s  # the successor is due
        await first.refresh()
        clock.now += 60  # the other replica's next timed reload
        await second.refresh()
        new = next(kid for kid in kids(first) if kid != old)
        assert kids(first) == kids(second) == [old, new]
        assert first.signing_key().kid == second.signing_key().kid == old
        clock.now = START + times.rotate_every_s - 1
        assert first.signing_key().kid == second.signing_key().kid == old
        clock.now = START + times.rotate_every_s  # both switch at the same moment, without reloading
        assert first.signing_key().kid == second.signing_key().kid == new


@pytest.mark.finding(6)
async def test_a_token_signed_by_the_old_key_still_verifies_after_the_rotation(tmp_db: str) -> None:
    async with replicas(tmp_db, 1) as (clock, (keys,)):
        await keys.start()
        try:
            issuer = MeshTokenIssuer(keys, "http://127.0.0.1:3000")
            clock.now = START + keys.times.rotate_every_s - keys.times.publish_ahead_s
            await keys.refresh()
            clock.now = START + keys.times.rotate_every_s - 1
            old_token = issuer.token(PRINCIPAL, "c-1")
            clock.now += 2
            await keys.refresh()
            issuer.clear()
            new_token = issuer.token(PRINCIPAL, "c-1")
        finally:
            await keys.stop()
        old_kid, new_kid = (jwt.get_unverified_header(token)["kid"] for token in (old_token, new_token))
        assert old_kid != new_kid == keys.signing_key().kid
        assert signature_valid(keys, old_token) and signature_valid(keys, new_token)


@pytest.mark.finding(6)
async def test_the_old_key_leaves_the_jwks_only_after_every_token_it_signed_expired(tmp_db: str) -> None:
    async with replicas(tmp_db, 2) as (clock, (keys, later)):
        issuer = MeshTokenIssuer(keys, "http://127.0.0.1:3000")
        await keys.refresh()
        old = keys.signing_key().kid
        switch = START + keys.times.rotate_every_s
        clock.now = switch - keys.times.publish_ahead_s
        await keys.refresh()
        clock.now = switch - 1
        last_old_token = issuer.token(PRINCIPAL, "c-1")  # the last token the old key signs
        expires = jwt.decode(last_old_token, options={"verify_signature": False})["exp"]
        clock.now = expires
        await keys.refresh()
        assert old in kids(keys) and signature_valid(keys, last_old_token)
        gone = switch + keys.times.token_lifetime_s + keys.times.retire_margin_s
        assert gone > expires
        clock.now = gone - 1
        assert old in kids(keys)
        clock.now = gone
        assert old not in kids(keys)  # even before the next reload
        assert not signature_valid(keys, last_old_token)
        await keys.refresh()
        await later.refresh()  # a replica started now never sees the old key: its row is gone
        assert kids(later) == kids(keys) == [keys.signing_key().kid]


@pytest.mark.finding(6)
async def test_replicas_racing_to_create_the_successor_agree_on_one(tmp_db: str) -> None:
    async with replicas(tmp_db, 2) as (clock, (first, second)):
        await first.refresh()
        await second.refresh()
        clock.now = START + first.times.rotate_every_s - first.times.publish_ahead_s
        await asyncio.gather(first.refresh(), second.refresh())
        assert len(kids(first)) == 2
        assert kids(first) == kids(second)


@pytest.mark.finding(7)
async def test_a_credential_reuses_its_token_for_four_minutes_then_gets_a_new_one(tmp_db: str) -> None:
    async with replicas(tmp_db, 1) as (clock, (keys,)):
        await keys.refresh()
        issuer = MeshTokenIssuer(keys, "http://127.0.0.1:3000")
        first = issuer.token(PRINCIPAL, "c-1")
        clock.now += 239
        assert issuer.token(PRINCIPAL, "c-1") == first
        assert issuer.token(PRINCIPAL, "c-2") != first
        clock.now += 1
        assert issuer.token(PRINCIPAL, "c-1") != first


@pytest.mark.finding(7)
async def test_a_principal_with_other_permissions_gets_its_own_token_and_an_equal_one_shares(tmp_db: str) -> None:
    async with replicas(tmp_db, 1) as (_clock, (keys,)):
        await keys.refresh()
        issuer = MeshTokenIssuer(keys, "http://127.0.0.1:3000")
        first = issuer.token(PRINCIPAL, "c-1")
        narrowed = issuer.token(replace(PRINCIPAL, grants=(*PRINCIPAL.grants, {"c-1": ["echo"]})), "c-1")
        other_grant = issuer.token(replace(PRINCIPAL, api_key_id=None, grant_id="g-2", client_id="cl"), "c-1")
        assert len({first, narrowed, other_grant}) == 3
        assert jwt.decode(narrowed, options={"verify_signature": False})["permissions"] == ["echo"]
        assert issuer.token(replace(PRINCIPAL), "c-1") == first  # an equal principal (re-authenticated)
