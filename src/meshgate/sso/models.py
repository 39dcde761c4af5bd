"""An organization's single sign-on settings, as the services return them (never with the client secret)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from meshgate.errors import InvalidInput

OIDC = "oidc"
GOOGLE = "google"
GITHUB = "github"
PROVIDERS = (OIDC, GOOGLE, GITHUB)
GOOGLE_ISSUER = "https://accounts.google.com"
GITHUB_ISSUER = "https://github.com"  # who the identities come from; where GitHub is reached is the gateway's setting
DEFAULT_SCOPES = "openid email profile"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")  # RFC 6749 scope-token
MAX_DOMAINS = 20


@dataclass(frozen=True, slots=True)
class SsoConfig:
    organization_id: str
    provider: str
    issuer: str
    client_id: str
    has_client_secret: bool
    scopes: str
    default_role: str
    sso_required: bool
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "organizationId": self.organization_id,
            "provider": self.provider,
            "issuer": self.issuer,
            "clientId": self.client_id,
            "clientSecretSet": self.has_client_secret,
            "scopes": self.scopes,
            "defaultRole": self.default_role,
            "ssoRequired": self.sso_required,
            "updatedAt": self.updated_at.isoformat().replace("+00:00", "Z"),
        }


def clean_domain(value: str) -> str:
    """A lowercase DNS name such as `example.com` (an `@` in front is dropped)."""
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    if not _DOMAIN.match(domain):
        raise InvalidInput(f"{value[:80]!r} is not a domain name; give one like example.com")
    return domain


def clean_scopes(value: str | None) -> str:
    """Space-separated scopes that always include `openid` and `email`."""
    tokens = (value or DEFAULT_SCOPES).split()
    for token in tokens:
        if not _SCOPE.match(token):
            raise InvalidInput(f"scope {token[:40]!r} is not a valid OAuth scope")
    ordered = list(dict.fromkeys(["openid", "email", *tokens]))
    if len(ordered) > 20:
        raise InvalidInput("give at most 20 scopes")
    return " ".join(ordered)


def check_issuer(value: str, *, loopback_allowed: bool) -> str:
    """An issuer identifier: https (plain http only to a loopback address while loopback is allowed),
    no query, fragment or credentials (OpenID Connect Discovery 1.0 §2)."""
    issuer = value.strip().rstrip("/")
    parts = urlsplit(issuer)
    if len(issuer) > 2048 or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise InvalidInput("issuer must be an https URL with a host and no query, fragment or user name")
    if parts.scheme == "https":
        return issuer
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and loopback_allowed:
        return issuer
    raise InvalidInput(
        f"issuer {issuer[:200]!r} must use https (plain http only to a loopback address, "
        "and only while MESHGATE_BLOCK_PRIVATE_NETWORKS is off)"
    )
