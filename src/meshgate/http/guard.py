"""What every MCP endpoint checks before a message is read: Host and Origin (DNS-rebinding
protection), the body size limit, the content type, and the bearer credential."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.access import Principal
from meshgate.access.ratelimit import RateLimiter
from meshgate.errors import (
    InvalidInput,
    MeshgateError,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    UnsupportedMediaType,
)
from meshgate.http.errors import mcp_http_error

Authenticate = Callable[[str], Awaitable[Principal]]
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Allowed `Host` and `Origin` values; a pattern `name:*` admits any port."""

    hosts: tuple[str, ...]
    origins: tuple[str, ...]

    @classmethod
    def for_public_url(cls, public_url: str, hosts: Sequence[str] = (), origins: Sequence[str] = ()) -> OriginPolicy:
        """Configured values, else the public URL's host plus loopback names on any port."""
        parts = urlsplit(public_url)
        default_hosts = (parts.netloc, *(f"{name}:*" for name in _LOOPBACK), *_LOOPBACK)
        default_origins = (
            f"{parts.scheme}://{parts.netloc}",
            *(f"{scheme}://{name}:*" for scheme in ("http", "https") for name in _LOOPBACK),
            *(f"{scheme}://{name}" for scheme in ("http", "https") for name in _LOOPBACK),
        )
        return cls(tuple(hosts) or default_hosts, tuple(origins) or default_origins)

    def host_allowed(self, host: str | None) -> bool:
        return host is not None and _matches(host.lower(), self.hosts)

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or _matches(origin.lower(), self.origins)


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    if value in patterns:
        return True
    for pattern in patterns:
        if pattern == "*":
            return True
        if pattern.endswith(":*") and value.rsplit(":", 1)[0] == pattern[:-2] and value.rsplit(":", 1)[-1].isdigit():
            return True
    return False


class Admission:
    """The checks, in order: Host/Origin (403), declared size (413), credential (401), rate limit (429),
    content type (415), body read under the limit (413), no JSON-RPC batch (400)."""

    def __init__(
        self,
        *,
        authenticate: Authenticate,
        policy: OriginPolicy,
        max_body_bytes: int,
        limiter: RateLimiter | None = None,
        public_url: str = "",
    ) -> None:
        self._public_url = public_url
        self._authenticate = authenticate
        self._policy = policy
        self._max_body = max_body_bytes
        self._limiter = limiter if limiter is not None and limiter.enabled else None

    async def admit(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> tuple[Principal, bytes]:
        """The authenticated caller and the request body (empty for GET and DELETE)."""
        if not self._policy.host_allowed(headers.get("host")):
            raise PermissionDenied(
                f"Host {headers.get('host', '')[:100]!r} is not allowed (set MESHGATE_ALLOWED_HOSTS)"
            )
        if not self._policy.origin_allowed(headers.get("origin")):
            raise PermissionDenied(
                f"Origin {headers.get('origin', '')[:100]!r} is not allowed (set MESHGATE_ALLOWED_ORIGINS)"
            )
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {self._max_body}")
        principal = await self._authenticate(bearer_token(headers.get("authorization")))
        if principal.audience is not None:
            resource = self._public_url + resource_path(scope["path"])
            if principal.audience != resource:
                raise Unauthenticated(
                    f"this access token was issued for {principal.audience[:200]}, not for {resource[:200]}"
                )
        if self._limiter is not None:
            self._limiter.check(principal.organization_id, principal.credential_id)
        if scope["method"] != "POST":
            return principal, b""
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType(
                f"Content-Type is {media_type or 'missing'!r}; MCP messages must be application/json"
            )
        body = await self._read_body(receive)
        if body.lstrip()[:1] == b"[":
            raise InvalidInput("JSON-RPC batches are not supported: send one JSON-RPC object per request")
        return principal, body

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise PayloadTooLarge(f"request body is over the limit of {self._max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class McpGuard:
    """ASGI wrapper for an SDK-served MCP endpoint; puts the authenticated `Principal` into the scope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        admission: Admission,
        resource_metadata_url: Callable[[str], str],
        scope_key: str,
    ) -> None:
        self._app = app
        self._admission = admission
        self._metadata_url = resource_metadata_url
        self._scope_key = scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal, body = await self._admission.admit(scope, receive, headers_of(scope))
        except MeshgateError as error:
            response = mcp_http_error(error, resource_metadata=self._metadata_url(scope.get("path", "/mcp")))
            await response(scope, receive, send)
            return
        scope[self._scope_key] = principal
        await self._app(scope, _replay(body, receive), send)


def resource_path(path: str) -> str:
    """The MCP endpoint a request path belongs to: `/mcp`, `/mcp/{id}` or `/mcp/virtual/{id}` (RFC 8707 resource)."""
    parts = path.split("/", 4)
    if len(parts) >= 4 and parts[2] == "virtual":
        return "/".join(parts[:4])
    return "/".join(parts[:3])


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers with lower-case names (ASGI servers already lower-case them)."""
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", [])}


def bearer_token(value: str | None) -> str:
    """The credential of an `Authorization: Bearer …` header, or `Unauthenticated`."""
    if not value:
        raise Unauthenticated("missing bearer token")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <API key or access token>'")
    return token.strip()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def request_id_of(headers: dict[str, str]) -> str:
    """The client's `x-request-id` when it is short and printable, else a new one."""
    given = headers.get("x-request-id", "")
    if 0 < len(given) <= 200 and given.isprintable():
        return given
    return uuid.uuid4().hex
