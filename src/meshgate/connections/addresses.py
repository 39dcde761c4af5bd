"""Which network addresses meshgate may connect to for a connection (SSRF guard).

Always refused: link-local ranges (169.254.0.0/16, fe80::/10), which include the cloud metadata
services, plus the other well-known metadata addresses, the unspecified and multicast addresses.
Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, and loopback) are allowed by default, since
a self-hosted gateway usually fronts internal servers; `MESHGATE_BLOCK_PRIVATE_NETWORKS=1` refuses them and
every other IANA special-purpose range that is not globally reachable (CGNAT, 6to4, site-local, ...). An
IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo) is also judged by the IPv4 address inside.
meshgate's own listen address and port (and its public URL's host and port) are always refused, so a
connection cannot turn the gateway on itself (its `/metrics`, its dashboard). The check runs when a
connection is saved and again on every new TCP connection, after DNS resolution, so a name that later
resolves somewhere else (DNS rebinding) is still caught. The upstream client never follows redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("168.63.129.16"),  # Azure WireServer
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud Classic metadata
}

# IANA special-purpose ranges that are not globally reachable, listed here so the answer does not depend on
# the Python patch release's `is_private` tables. Refused when private networks are blocked.
SPECIAL_PURPOSE_NETWORKS = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "240.0.0.0/4", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fec0::/10",
    )
)  # fmt: skip


# Ranges refused whatever the setting, beside the metadata addresses (tables, so tests take addresses from them).
LINK_LOCAL_NETWORKS = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
NOT_UNICAST_NETWORKS = tuple(
    ipaddress.ip_network(block) for block in ("0.0.0.0/32", "::/128", "224.0.0.0/4", "ff00::/8")
)


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo), which is where the packets end up."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


class AddressRefused(Exception):
    """The address is not one meshgate connects to; the message says why."""


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    block_private: bool = False
    # (host or address, port) pairs that are meshgate itself: its listen address and its public URL
    own: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def for_gateway(cls, host: str, port: int, public_url: str, *, block_private: bool = False) -> AddressPolicy:
        """The policy of a gateway listening on `host:port` and reached at `public_url`."""
        parts = urlsplit(public_url)
        own = {(host.lower(), port)}
        if parts.hostname:
            own.add((parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)))
        if _is_address(host) and ipaddress.ip_address(host).is_unspecified:
            own |= {(address, port) for address in ("127.0.0.1", "::1", *_addresses_of(socket.gethostname()))}
        elif not _is_address(host):
            own |= {(address, port) for address in _addresses_of(host)}
        return cls(block_private=block_private, own=frozenset(own))

    def _refuse_own(self, host: str, address: str, port: int) -> None:
        if not self.own:
            return
        ip = ipaddress.ip_address(address)
        plain = str(_embedded(ip) or ip)
        if (host.lower(), port) in self.own or (address, port) in self.own or (plain, port) in self.own:
            raise AddressRefused(f"{host}:{port} is meshgate's own address")

    def check(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        inner = _embedded(ip)
        if inner is not None:
            self.check(str(inner))
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                return
        if ip in METADATA_ADDRESSES:
            raise AddressRefused(f"{ip} is a cloud metadata address")
        if ip.is_link_local or any(ip in block for block in LINK_LOCAL_NETWORKS):
            raise AddressRefused(f"{ip} is a link-local address")
        if any(ip in block for block in NOT_UNICAST_NETWORKS) or (ip.is_reserved and not ip.is_loopback):
            raise AddressRefused(f"{ip} is not a unicast address")
        if self.block_private and (
            ip.is_private or ip.is_loopback or any(ip in block for block in SPECIAL_PURPOSE_NETWORKS)
        ):
            raise AddressRefused(f"{ip} is a private address (MESHGATE_BLOCK_PRIVATE_NETWORKS is on)")

    async def resolve(self, host: str, port: int) -> list[str]:
        """The allowed addresses of `host`; refuses when none is allowed."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise AddressRefused(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        allowed: list[str] = []
        reasons: list[str] = []
        for info in infos:
            address = str(info[4][0])
            try:
                self._refuse_own(host, address, port)
                self.check(address)
            except AddressRefused as refused:
                reasons.append(str(refused))
            else:
                if address not in allowed:
                    allowed.append(address)
        if not allowed:
            raise AddressRefused(f"{host} resolves only to refused addresses: {'; '.join(reasons)}")
        return allowed


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _addresses_of(name: str) -> set[str]:
    """What a name resolves to, once at start (the machine's own name, or the name meshgate listens on)."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}
