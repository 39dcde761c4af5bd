"""What meshgate learns about an upstream's authorization server (RFC 8414), and the checks it applies to it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from meshgate.connections.addresses import AddressPolicy
from meshgate.errors import OAuthSetupError

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    iss_parameter: bool
    resource: str
    scopes: str | None


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_issuer(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def check_authorization_endpoint(url: str, addresses: AddressPolicy) -> str:
    """`url` when a person's browser may be sent there: https, or http to loopback while loopback is allowed.

    meshgate never fetches this URL itself (the browser does), so the connect-time address guard does not see
    it; a `javascript:` or plain-http endpoint would otherwise end up in the dashboard's redirect.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    loopback_allowed = not addresses.block_private
    if parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS and loopback_allowed:
        return url
    raise OAuthSetupError(
        f"authorization_endpoint {url[:200]!r} must be an https URL (http only to a loopback address, "
        "and only while MESHGATE_BLOCK_PRIVATE_NETWORKS is off)"
    )
