"""Input models of the connection tools, with the checks that need more than a type."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from meshgate.mcp.registry import ToolInput

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "x-mesh-token",
        "upgrade",
        "te",
        "keep-alive",
    }
)
MAX_HEADERS = 50


def check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def check_headers(value: dict[str, Any]) -> dict[str, str | None]:
    """Valid extra headers; a None value stands for "keep the stored value" (resolved by the caller)."""
    if len(value) > MAX_HEADERS:
        raise ValueError(f"has {len(value)} headers; at most {MAX_HEADERS} are allowed")
    headers: dict[str, str | None] = {}
    for name, item in value.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"header name {name[:60]!r} is not a valid HTTP header name")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by meshgate and cannot be configured")
        if item is None:
            headers[name] = None
            continue
        if not isinstance(item, str) or "\r" in item or "\n" in item or len(item) > 8192:
            raise ValueError(f"header {name!r} must be a string of at most 8192 characters without line breaks")
        headers[name] = item
    return headers


class StdioInput(ToolInput):
    command: str = Field(description="Executable to start", min_length=1, max_length=1024)
    args: list[str] = Field(default_factory=list[str], description="Arguments", max_length=200)
    cwd: str | None = Field(None, description="Working directory", max_length=1024)
    envVars: dict[str, str | None] = Field(  # noqa: N815
        default_factory=dict[str, str | None],
        description="Environment variables (values secret); a null value keeps the stored value",
    )


class OAuthInput(ToolInput):
    client_id: str | None = Field(
        None, description="Pre-registered client id, for servers that refuse dynamic registration", max_length=512
    )
    client_secret: str | None = Field(
        None, description="Its client secret (write-only secret); null keeps the stored one", max_length=4096
    )
    scope: str | None = Field(None, description="Scopes to ask the server for, space-separated", max_length=2000)


class ConnectionDataInput(ToolInput):
    """Fields of a connection; all optional so the same model serves create (checked further) and update."""

    title: str | None = Field(None, description="Display name, 1-200 characters", min_length=1, max_length=200)
    description: str | None = Field(None, description="Free text, at most 2000 characters", max_length=2000)
    icon: str | None = Field(None, description="Icon URL", max_length=2048)
    connection_type: Literal["HTTP", "SSE", "STDIO"] | None = Field(
        None, description="HTTP (Streamable HTTP), SSE (legacy HTTP+SSE) or STDIO (local command)"
    )
    connection_url: str | None = Field(None, description="Server URL (HTTP and SSE)", max_length=2048)
    connection_token: str | None = Field(
        None, description="Bearer token meshgate sends upstream (write-only secret)", max_length=8192
    )
    connection_headers: dict[str, Any] | None = Field(
        None,
        description="HTTP/SSE: extra headers meshgate sends upstream (values write-only secrets); STDIO: "
        "{command, args?, cwd?, envVars?} (envVars values write-only secrets). Replaces the stored object; a "
        "header or envVars value given as null keeps its stored value",
    )
    configuration_state: dict[str, Any] | None = Field(None, description="Server configuration (write-only secret)")
    oauth: OAuthInput | None = Field(
        None,
        description="Use OAuth instead of connection_token: {} to register with the server dynamically, or "
        "{client_id, client_secret?} for a pre-registered client; then CONNECTION_OAUTH_START",
    )
    metadata: dict[str, Any] | None = Field(None, description="Free-form JSON kept with the connection")
    status: Literal["active", "inactive"] | None = Field(None, description="inactive connections refuse calls")
    connect_timeout_ms: int | None = Field(
        None, description="Connect timeout, 100-60000 ms (default 10000)", ge=100, le=60_000
    )
    call_timeout_ms: int | None = Field(
        None, description="Call timeout, 1000-3600000 ms (default 300000)", ge=1000, le=3_600_000
    )

    @field_validator("connection_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return check_url(value)

    @field_validator("icon")
    @classmethod
    def _icon(cls, value: str | None) -> str | None:
        return check_url(value)


class CreateInput(ToolInput):
    data: ConnectionDataInput = Field(description="The connection's fields")


class ListInput(ToolInput):
    where: dict[str, Any] | None = Field(
        None,
        description='Filter: {"field": ["title"], "operator": "eq|ne|gt|gte|lt|lte|in|like|contains", "value": …} '
        'or {"operator": "and|or|not", "conditions": [...]}',
    )
    orderBy: list[dict[str, Any]] | None = Field(  # noqa: N815
        None, description='Sort: [{"field": ["title"], "direction": "asc|desc"}]', max_length=8
    )
    limit: int = Field(100, description="Page size, 1-1000", ge=1, le=1000)
    offset: int = Field(0, description="Items to skip", ge=0)


class IdInput(ToolInput):
    id: str = Field(description="Connection id", max_length=36)


class UpdateInput(ToolInput):
    id: str = Field(description="Connection id", max_length=36)
    data: ConnectionDataInput = Field(description="Fields to change; a secret given as null is removed")


class ConfigureInput(ToolInput):
    id: str = Field(description="Connection id", max_length=36)
    state: dict[str, Any] = Field(description="Configuration state (write-only secret)")
    scopes: list[str] | None = Field(None, description="Configuration scopes", max_length=200)
