"""OAuth clients of meshgate: dynamically registered (RFC 7591), pre-registered by an admin, or identified
by an https URL whose client ID metadata document meshgate fetches, validates and caches.

Both ways in are open to anyone, so both are bounded per client address (security review 10 and 21):
metadata fetches and registrations take a token from the address's bucket, registrations are also
counted per address and day in the database, and a dynamic client nobody authorized within a day is
deleted (at the next registration). A metadata document that cannot be used answers one generic error
whatever went wrong, so the fetch cannot be used to probe the gateway's network; the log has the detail.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access.ratelimit import Rate, TokenBuckets
from meshgate.connections.addresses import AddressPolicy
from meshgate.db.database import rows_changed
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import oauth_clients, oauth_grants
from meshgate.errors import NotFound, OAuthError, RateLimited
from meshgate.identity.service import hash_key
from meshgate.jsonvalues import as_dict, as_list
from meshgate.oauth.fetch import FetchError, fetch
from meshgate.oauth.scopes import normalize_scope, permissions_for_scope

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_REDIRECT_URIS = 20
MAX_URI = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "::1", "localhost")
_REFUSED_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_METADATA_TTL_S = (60, 3600, 24 * 3600)  # min, default, max seconds a metadata document is trusted
_MAX_CACHED_DOCUMENTS = 1000
DOCUMENT_UNAVAILABLE = "client metadata document unavailable"
_COUNT_WINDOW = timedelta(days=1)  # registrations per address are counted over this window

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What unauthenticated callers may make meshgate do, per client address."""

    document_rate: Rate  # metadata document fetches (cache misses)
    register_rate: Rate  # dynamic registrations
    registrations_per_day: int  # dynamic registrations within any 24 hours
    unused_client_s: float = 24 * 3600  # a dynamic client without any authorization is deleted after this


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    kind: str  # dynamic | registered | metadata
    secret_hash: str | None = field(default=None, repr=False)
    client_uri: str | None = None
    organization_id: str | None = None

    @property
    def host(self) -> str | None:
        """The host that vouches for the client (its metadata document); a self-declared `client_uri` proves nothing."""
        return urlsplit(self.client_id).hostname if self.kind == "metadata" else None

    @property
    def verified(self) -> bool:
        """Whether someone other than the client itself stands behind its name (an admin, or its metadata host)."""
        return self.kind != "dynamic"

    def redirect_allowed(self, uri: str) -> bool:
        """Exact match, except that a loopback redirect may use any port (RFC 8252 §7.3)."""
        if uri in self.redirect_uris:
            return True
        asked = urlsplit(uri)
        if asked.scheme != "http" or asked.hostname is None or f"{asked.hostname}" not in LOOPBACK_HOSTS:
            return False
        for registered in self.redirect_uris:
            known = urlsplit(registered)
            if (known.scheme, known.hostname, known.path, known.query) == (
                asked.scheme,
                asked.hostname,
                asked.path,
                asked.query,
            ):
                return True
        return False


def redirect_host(redirect_uri: str) -> str:
    """Where an authorization code goes: the host, or the app scheme of a native client."""
    parts = urlsplit(redirect_uri)
    return parts.hostname or f"{parts.scheme}: (an app on this device)"


def check_redirect_uri(uri: Any) -> str:
    """A redirect URI a client may register: https, http on loopback, or a private-use scheme of a native app."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI:
        raise OAuthError("invalid_redirect_uri", f"redirect URIs must be strings of 1 to {MAX_URI} characters")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme) or parts.fragment:
        raise OAuthError("invalid_redirect_uri", f"{uri[:200]!r} is not an absolute URI without a fragment")
    if scheme in _REFUSED_SCHEMES:
        raise OAuthError("invalid_redirect_uri", f"{scheme}: URIs cannot be redirect URIs")
    if scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
        raise OAuthError(
            "invalid_redirect_uri", f"{uri[:200]!r}: plain http is only allowed for loopback addresses (127.0.0.1)"
        )
    if scheme in ("http", "https") and not parts.hostname:
        raise OAuthError("invalid_redirect_uri", f"{uri[:200]!r} has no host")
    return uri


def _text(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise OAuthError("invalid_client_metadata", f"{name} must be a string of at most {limit} characters")
    return value


def _redirect_uris(document: dict[str, Any]) -> tuple[str, ...]:
    uris = as_list(document.get("redirect_uris"))
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise OAuthError("invalid_redirect_uri", f"redirect_uris must list 1 to {MAX_REDIRECT_URIS} redirect URIs")
    return tuple(check_redirect_uri(uri) for uri in uris)


@dataclass(frozen=True, slots=True)
class Registration:
    """What a dynamic registration asked for, validated."""

    name: str
    redirect_uris: tuple[str, ...]
    auth_method: str
    grant_types: tuple[str, ...]
    details: dict[str, Any]

    @classmethod
    def parse(cls, document: Any) -> Registration:
        if not isinstance(document, dict):
            raise OAuthError("invalid_client_metadata", "the registration request must be a JSON object")
        body = as_dict(document)
        uris = _redirect_uris(body)
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise OAuthError(
                "invalid_client_metadata",
                f"token_endpoint_auth_method {str(method)[:40]!r} is not supported; "
                f"use one of {', '.join(AUTH_METHODS)}",
            )
        grants = as_list(body.get("grant_types", ["authorization_code"]))
        if not grants or any(grant not in GRANT_TYPES for grant in grants):
            raise OAuthError("invalid_client_metadata", f"grant_types may contain only {' and '.join(GRANT_TYPES)}")
        responses = as_list(body.get("response_types", ["code"]))
        if responses != ["code"]:
            raise OAuthError("invalid_client_metadata", 'response_types must be ["code"]')
        scope = _text(body.get("scope"), "scope", 4000)
        permissions_for_scope(scope)  # reject malformed scopes now rather than at authorization time
        details = {
            key: _text(body.get(key), key, MAX_URI)
            for key in ("client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id", "software_version")
        }
        details["scope"] = normalize_scope(scope)
        name = _text(body.get("client_name"), "client_name", 200) or "Unnamed client"
        return cls(name, uris, method, tuple(dict.fromkeys(str(g) for g in grants)), details)


class ClientRegistry:
    """Finds clients (database or metadata document) and keeps fetched documents in memory for a while.

    `clock` (monotonic seconds) drives the rate buckets and the document cache, `now` (UTC) the ages of
    dynamic clients; tests inject both."""

    def __init__(
        self,
        addresses: AddressPolicy,
        limits: ClientLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._addresses = addresses
        self._limits = limits
        self._clock = clock
        self._now = now
        self._buckets = TokenBuckets(clock)
        self._documents: OrderedDict[str, tuple[float, OAuthClient]] = OrderedDict()

    async def register(
        self, session: AsyncSession, registration: Registration, address: str
    ) -> tuple[dict[str, Any], str | None]:
        """Store a dynamically registered client; returns the RFC 7591 response and the secret (shown once).

        `address` is the caller's; it pays one token of its bucket and one of its registrations for the day."""
        self._take(f"r:{address}", self._limits.register_rate, "client registrations")
        now = self._now()
        await self.delete_unused(session)
        source = address[:64]
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(oauth_clients.c.created_at)).where(
                    oauth_clients.c.registered_from == source, oauth_clients.c.created_at > now - _COUNT_WINDOW
                )
            )
        ).one()
        if int(count or 0) >= self._limits.registrations_per_day:
            wait = max(1.0, (oldest + _COUNT_WINDOW - now).total_seconds()) if oldest is not None else 3600.0
            raise RateLimited(
                f"{self._limits.registrations_per_day} clients were registered from this address within a day; "
                f"retry in {round(wait)} s or reuse a registered client",
                retry_after=wait,
            )
        client_id = "mgc_" + secrets.token_urlsafe(18)
        secret = None if registration.auth_method == "none" else "mgcs_" + secrets.token_urlsafe(32)
        await session.execute(
            oauth_clients.insert().values(
                id=new_id(),
                client_id=client_id,
                client_secret_hash=None if secret is None else hash_key(secret),
                organization_id=None,
                kind="dynamic",
                name=registration.name,
                redirect_uris=list(registration.redirect_uris),
                token_endpoint_auth_method=registration.auth_method,
                details={**registration.details, "grant_types": list(registration.grant_types)},
                created_at=now,
                registered_from=source,
            )
        )
        answer: dict[str, Any] = {
            "client_id": client_id,
            "client_id_issued_at": int(now.timestamp()),
            "client_name": registration.name,
            "redirect_uris": list(registration.redirect_uris),
            "token_endpoint_auth_method": registration.auth_method,
            "grant_types": list(registration.grant_types),
            "response_types": ["code"],
            **{key: value for key, value in registration.details.items() if value is not None},
        }
        if secret is not None:
            answer["client_secret"] = secret
            answer["client_secret_expires_at"] = 0
        return answer, secret

    async def delete_unused(self, session: AsyncSession) -> int:
        """Delete dynamic clients older than the limit that no one ever authorized (no grant names them)."""
        cutoff = self._now() - timedelta(seconds=self._limits.unused_client_s)
        result = await session.execute(
            delete(oauth_clients).where(
                oauth_clients.c.kind == "dynamic",
                oauth_clients.c.created_at < cutoff,
                ~exists().where(oauth_grants.c.client_id == oauth_clients.c.client_id),
            )
        )
        return rows_changed(result)

    async def create_registered(
        self, session: AsyncSession, organization_id: str, name: str, redirect_uris: list[str], confidential: bool
    ) -> tuple[OAuthClient, str | None]:
        """A client an admin registers by hand (for clients that cannot register themselves)."""
        if not redirect_uris or len(redirect_uris) > MAX_REDIRECT_URIS:
            raise OAuthError("invalid_redirect_uri", f"give 1 to {MAX_REDIRECT_URIS} redirect URIs")
        uris = tuple(check_redirect_uri(uri) for uri in redirect_uris)
        client_id = "mgc_" + secrets.token_urlsafe(18)
        secret = "mgcs_" + secrets.token_urlsafe(32) if confidential else None
        method = "client_secret_basic" if confidential else "none"
        await session.execute(
            oauth_clients.insert().values(
                id=new_id(),
                client_id=client_id,
                client_secret_hash=None if secret is None else hash_key(secret),
                organization_id=organization_id,
                kind="registered",
                name=name,
                redirect_uris=list(uris),
                token_endpoint_auth_method=method,
                details={"grant_types": list(GRANT_TYPES)},
                created_at=utc_now(),
            )
        )
        client = OAuthClient(client_id, name, uris, method, "registered", organization_id=organization_id)
        return client, secret

    async def list_registered(self, session: AsyncSession, organization_id: str) -> list[OAuthClient]:
        rows = await session.execute(
            select(oauth_clients)
            .where(oauth_clients.c.organization_id == organization_id)
            .order_by(oauth_clients.c.created_at)
        )
        return [_client(row) for row in rows]

    async def delete_registered(self, session: AsyncSession, organization_id: str, client_id: str) -> None:
        result = await session.execute(
            delete(oauth_clients).where(
                oauth_clients.c.organization_id == organization_id, oauth_clients.c.client_id == client_id
            )
        )
        if rows_changed(result) == 0:
            raise NotFound(f"OAuth client {client_id[:80]} not found")

    async def find(self, session: AsyncSession, client_id: str, address: str) -> OAuthClient:
        """The client, or `OAuthError(invalid_client)`; https client ids are metadata documents, fetched on
        behalf of `address` (the caller's, which pays for the fetch)."""
        if not client_id or len(client_id) > 512:
            raise OAuthError("invalid_client", "client_id is missing or too long", status=401)
        if client_id.startswith("https://"):
            return await self._document(client_id, address)
        row = (await session.execute(select(oauth_clients).where(oauth_clients.c.client_id == client_id))).first()
        if row is None:
            raise OAuthError("invalid_client", "unknown client_id; register the client first", status=401)
        return _client(row)

    async def authenticate(
        self,
        session: AsyncSession,
        client_id: str | None,
        secret: str | None,
        authorization: str | None,
        address: str,
    ) -> OAuthClient:
        """The client calling the token or revocation endpoint, checked against its registered method."""
        basic_id, basic_secret = _basic(authorization)
        if basic_id is not None:
            if client_id is not None and client_id != basic_id:
                raise OAuthError("invalid_request", "client_id differs from the Authorization header", status=400)
            client_id, secret = basic_id, basic_secret
        if not client_id:
            raise OAuthError("invalid_client", "client authentication is missing (client_id)", status=401)
        client = await self.find(session, client_id, address)
        if client.auth_method == "none":
            if secret:
                raise OAuthError("invalid_client", "this client is public and must not send a client secret", 401)
            return client
        if not secret or client.secret_hash is None or not hmac.compare_digest(hash_key(secret), client.secret_hash):
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        return client

    async def _document(self, url: str, address: str) -> OAuthClient:
        cached = self._documents.get(url)
        if cached is not None and cached[0] > self._clock():
            self._documents.move_to_end(url)
            return cached[1]
        parts = urlsplit(url)
        if parts.path in ("", "/") or parts.fragment or parts.username or parts.password:
            raise OAuthError(
                "invalid_client", "a client ID metadata URL needs a path and no fragment or credentials", 401
            )
        self._take(f"d:{address}", self._limits.document_rate, "client metadata document fetches")
        try:
            client, ttl = await self._fetch_document(url, parts.hostname)
        except (FetchError, OAuthError) as exc:
            # Refused address, closed port, TLS failure, timeout or a bad document: the caller learns none of it.
            reason = exc.message if isinstance(exc, OAuthError) else str(exc)
            log.info("client metadata document %s unavailable (asked from %s): %s", url[:200], address, reason)
            raise OAuthError("invalid_client", DOCUMENT_UNAVAILABLE, 401) from None
        self._documents[url] = (self._clock() + ttl, client)
        while len(self._documents) > _MAX_CACHED_DOCUMENTS:
            self._documents.popitem(last=False)
        return client

    async def _fetch_document(self, url: str, hostname: str | None) -> tuple[OAuthClient, float]:
        """The client a metadata document describes and how long to trust it; `FetchError`/`OAuthError` say why not."""
        fetched = await fetch(url, addresses=self._addresses, limit=64 * 1024, timeout_s=5.0, require_https=True)
        if fetched.status != 200:
            raise FetchError(f"{url[:200]} answered HTTP {fetched.status}")
        document = as_dict(fetched.json())
        if document.get("client_id") != url:
            raise FetchError("the document must be an object whose client_id is its URL")
        method = document.get("token_endpoint_auth_method", "none")
        if method != "none":
            raise FetchError(f"token_endpoint_auth_method must be 'none', not {str(method)[:40]!r}")
        uris = _redirect_uris(document)
        name = _text(document.get("client_name"), "client_name", 200) or hostname or url
        client_uri = _text(document.get("client_uri"), "client_uri", MAX_URI)
        client = OAuthClient(url, name, uris, "none", "metadata", client_uri=client_uri)
        return client, _ttl(fetched.headers.get("cache-control"))

    def _take(self, bucket: str, rate: Rate, what: str) -> None:
        wait = self._buckets.take(bucket, rate)
        if wait is not None:
            raise RateLimited(f"too many {what} from this address; retry in {max(1, round(wait))} s", retry_after=wait)


def _ttl(cache_control: str | None) -> float:
    low, default, high = _METADATA_TTL_S
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() in ("no-store", "no-cache"):
            return low
        if name.lower() == "max-age" and value.isdigit():
            return float(min(max(int(value), low), high))
    return float(default)


def _basic(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization:
        return None, None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "the Basic Authorization header is not valid", status=401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "the Basic Authorization header is not valid", status=401)
    return unquote(client_id), unquote(secret)


def _client(row: Any) -> OAuthClient:
    details: dict[str, Any] = row.details or {}
    return OAuthClient(
        client_id=row.client_id,
        name=row.name,
        redirect_uris=tuple(row.redirect_uris),
        auth_method=row.token_endpoint_auth_method,
        kind=row.kind,
        secret_hash=row.client_secret_hash,
        client_uri=details.get("client_uri"),
        organization_id=row.organization_id,
    )
