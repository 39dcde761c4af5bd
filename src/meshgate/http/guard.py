"""What every MCP endpoint checks before a message is read: Host and Origin (DNS-rebinding
protection), the body size limit, and the bearer credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.access import Principal
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
    for pattern in patterns:
        if pattern in ("*", value):
            return True
        if pattern.endswith(":*") and value.rsplit(":", 1)[0] == pattern[:-2] and value.rsplit(":", 1)[-1].isdigit():
            return True
    return False


class McpGuard:
    """ASGI wrapper for MCP endpoints; puts the authenticated `Principal` into the scope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        policy: OriginPolicy,
        max_body_bytes: int,
        resource_metadata_url: Callable[[str], str],
        scope_key: str,
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._policy = policy
        self._max_body = max_body_bytes
        self._metadata_url = resource_metadata_url
        self._scope_key = scope_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        try:
            self._check_origin(headers)
            self._check_declared_length(headers)
            scope[self._scope_key] = await self._authenticate(_bearer(headers.get("authorization")))
            _check_content_type(headers)
            body = await self._read_body(receive)
            if body.lstrip()[:1] == b"[":
                raise InvalidInput("JSON-RPC batches are not supported: send one JSON-RPC object per request")
        except MeshgateError as error:
            response = mcp_http_error(error, resource_metadata=self._metadata_url(scope.get("path", "/mcp")))
            await response(scope, receive, send)
            return
        await self._app(scope, _replay(body, receive), send)

    def _check_origin(self, headers: dict[str, str]) -> None:
        if not self._policy.host_allowed(headers.get("host")):
            raise PermissionDenied(
                f"Host {headers.get('host', '')[:100]!r} is not allowed (set MESHGATE_ALLOWED_HOSTS)"
            )
        if not self._policy.origin_allowed(headers.get("origin")):
            raise PermissionDenied(
                f"Origin {headers.get('origin', '')[:100]!r} is not allowed (set MESHGATE_ALLOWED_ORIGINS)"
            )

    def _check_declared_length(self, headers: dict[str, str]) -> None:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {self._max_body}")

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
        return b"".join(chunks)


def _check_content_type(headers: dict[str, str]) -> None:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type is {media_type or 'missing'!r}; MCP messages must be application/json"
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", [])}


def _bearer(value: str | None) -> str:
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
