"""Which network addresses meshgate may connect to for a connection (SSRF guard).

Always refused: link-local ranges (169.254.0.0/16, fe80::/10), which include the cloud metadata
services, plus the other well-known metadata addresses, the unspecified and multicast addresses.
Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, and loopback) are allowed by default, since
a self-hosted gateway usually fronts internal servers; `MESHGATE_BLOCK_PRIVATE_NETWORKS=1` refuses them.
The check runs when a connection is saved and again on every new TCP connection, after DNS resolution,
so a name that later resolves somewhere else (DNS rebinding) is still caught. The upstream client never
follows redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


class AddressRefused(Exception):
    """The address is not one meshgate connects to; the message says why."""


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    block_private: bool = False

    def check(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in _METADATA:
            raise AddressRefused(f"{ip} is a cloud metadata address")
        if ip.is_link_local:
            raise AddressRefused(f"{ip} is a link-local address")
        if ip.is_unspecified or ip.is_multicast or (ip.is_reserved and not ip.is_loopback):
            raise AddressRefused(f"{ip} is not a unicast address")
        if self.block_private and (ip.is_private or ip.is_loopback):
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
                self.check(address)
            except AddressRefused as refused:
                reasons.append(str(refused))
            else:
                if address not in allowed:
                    allowed.append(address)
        if not allowed:
            raise AddressRefused(f"{host} resolves only to refused addresses: {'; '.join(reasons)}")
        return allowed
