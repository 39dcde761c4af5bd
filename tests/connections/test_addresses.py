"""The SSRF guard: link-local and metadata addresses are refused; private ranges when configured."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from conftest import new_owner
from meshgate.connections.addresses import (
    METADATA_ADDRESSES,
    SPECIAL_PURPOSE_NETWORKS,
    AddressPolicy,
    AddressRefused,
)
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, start_gateway
from support.mcp_client import call_error, connect

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("0.0.0.0", "not a unicast"),  # noqa: S104  (the address under test, nothing binds to it)
        ("224.0.0.1", "not a unicast"),
    ],
)
def test_always_refused_addresses(address: str, reason: str) -> None:
    with pytest.raises(AddressRefused, match=reason):
        AddressPolicy().check(address)


def test_private_and_loopback_addresses_follow_the_setting() -> None:
    for address in ("10.1.2.3", "192.168.0.10", "172.20.0.1", "127.0.0.1", "fc00::1", "8.8.8.8"):
        AddressPolicy().check(address)
    for address in ("10.1.2.3", "192.168.0.10", "127.0.0.1", "::1"):
        with pytest.raises(AddressRefused, match="private address"):
            AddressPolicy(block_private=True).check(address)
    AddressPolicy(block_private=True).check("8.8.8.8")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
        ("http://[fe80::1]:8080/mcp", "fe80::1 is a link-local address"),
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
