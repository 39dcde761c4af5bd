"""The SSRF guard: link-local and metadata addresses are refused; private ranges when configured."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from conftest import new_owner
from meshgate.connections.addresses import (
    LINK_LOCAL_NETWORKS,
    METADATA_ADDRESSES,
    NOT_UNICAST_NETWORKS,
    SPECIAL_PURPOSE_NETWORKS,
    AddressPolicy,
    AddressRefused,
)
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, start_gateway
from support.mcp_client import call_error, connect

pytestmark = pytest.mark.anyio


def _first_host(block: IPv4Network | IPv6Network) -> str:
    return str(block.network_address + 1) if block.num_addresses > 1 else str(block.network_address)


def _global_address() -> str:
    """The first /8 that no special-purpose range covers: a globally reachable address, only classified."""
    return next(
        str(address)
        for address in (IPv4Address(n << 24) for n in range(1, 224))
        if not any(address in block for block in SPECIAL_PURPOSE_NETWORKS)
    )


# (The addresses below are taken from the guard's tables and only classified: nothing connects to them.)
@pytest.mark.parametrize("block", LINK_LOCAL_NETWORKS, ids=str)
def test_link_local_addresses_are_always_refused(block: IPv4Network | IPv6Network) -> None:
    for address in (_first_host(block), str(block.broadcast_address)):
        with pytest.raises(AddressRefused, match="link-local"):
            AddressPolicy().check(address)


@pytest.mark.parametrize("block", NOT_UNICAST_NETWORKS, ids=str)
def test_unspecified_and_multicast_addresses_are_always_refused(block: IPv4Network | IPv6Network) -> None:
    with pytest.raises(AddressRefused, match="not a unicast"):
        AddressPolicy().check(_first_host(block))


_PRIVATE = [block for block in SPECIAL_PURPOSE_NETWORKS if block.is_private and _first_host(block) != "0.0.0.1"]


def test_private_and_loopback_addresses_follow_the_setting() -> None:
    allowed = [_first_host(block) for block in _PRIVATE if block.prefixlen <= 16 or block.version == 6]
    allowed = [address for address in allowed if _allowed_by_default(address)]
    assert "127.0.0.1" in allowed and len(allowed) >= 5
    for address in allowed:
        with pytest.raises(AddressRefused, match="private address"):
            AddressPolicy(block_private=True).check(address)
    AddressPolicy().check(_global_address())
    AddressPolicy(block_private=True).check(_global_address())


def _allowed_by_default(address: str) -> bool:
    try:
        AddressPolicy().check(address)
    except AddressRefused:
        return False
    return True


@pytest.mark.finding(10)
async def test_the_gateways_own_listen_address_is_refused() -> None:
    policy = AddressPolicy.for_gateway("127.0.0.1", 3100, "http://localhost:3100")
    for host in ("127.0.0.1", "::ffff:127.0.0.1", "localhost"):
        with pytest.raises(AddressRefused, match="meshgate's own address"):
            await policy.resolve(host, 3100)
    assert await policy.resolve("127.0.0.1", 3101) == ["127.0.0.1"]  # another port of the host is an upstream


@pytest.mark.finding(10)
async def test_a_connection_to_the_gateway_itself_is_not_saved(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        message = await call_error(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "me", "connection_type": "HTTP", "connection_url": f"{gateway.url}/metrics"}},
        )
    assert "connection_url is not allowed" in message and "meshgate's own address" in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://{min(METADATA_ADDRESSES, key=str)}/latest/meta-data", "is a cloud metadata address"),
        (f"http://[{LINK_LOCAL_NETWORKS[1].network_address + 1}]:8080/mcp", "is a link-local address"),
    ],
)
async def test_connections_to_refused_addresses_are_not_saved(gateway: Gateway, url: str, reason: str) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        message = await call_error(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {"data": {"title": "x", "connection_type": "HTTP", "connection_url": url}},
        )
    assert "invalid_input: connection_url is not allowed" in message and reason in message


async def test_blocking_private_networks_refuses_internal_servers(tmp_path: Path, upstream: Upstream) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path, MESHGATE_BLOCK_PRIVATE_NETWORKS="1")
        try:
            owner = await new_owner(gw)
            data = {"title": "internal", "connection_type": "HTTP", "connection_token": upstream.token}
            async with connect(gw.mcp_url, owner.api_key) as client:
                by_ip = await call_error(
                    client, "COLLECTION_CONNECTIONS_CREATE", {"data": {**data, "connection_url": upstream.url}}
                )
                by_name = await call_error(
                    client,
                    "COLLECTION_CONNECTIONS_CREATE",
                    {"data": {**data, "connection_url": upstream.url.replace("127.0.0.1", "localhost")}},
                )
            assert "127.0.0.1 is a private address" in by_ip
            assert "localhost resolves only to refused addresses" in by_name
        finally:
            assert gw.stop() == 0


@pytest.mark.finding(17)
@pytest.mark.parametrize("block", SPECIAL_PURPOSE_NETWORKS, ids=str)
def test_blocking_private_networks_refuses_every_special_purpose_range(block: IPv4Network | IPv6Network) -> None:
    """Every address of the IANA special-purpose table is refused, from its first to its last (the addresses
    are taken from the table and only classified: nothing connects to them)."""
    policy = AddressPolicy(block_private=True)
    for address in (block.network_address, block.broadcast_address):
        with pytest.raises(AddressRefused):
            policy.check(str(address))


@pytest.mark.finding(17)
@pytest.mark.parametrize("address", sorted(METADATA_ADDRESSES, key=str), ids=str)
def test_cloud_metadata_addresses_are_always_refused(address: IPv4Address | IPv6Address) -> None:
    with pytest.raises(AddressRefused, match="cloud metadata"):
        AddressPolicy().check(str(address))


@pytest.mark.finding(17)
def test_an_ipv6_address_carrying_a_metadata_address_is_refused_too() -> None:
    for address in METADATA_ADDRESSES:
        if isinstance(address, IPv4Address):
            six_to_four = IPv6Address((0x2002 << 112) | (int(address) << 80))  # 2002:<v4>::, built from it
            with pytest.raises(AddressRefused, match="cloud metadata"):
                AddressPolicy().check(str(six_to_four))
