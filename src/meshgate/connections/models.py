"""Connection values: what reads show (no secrets) and what the proxy needs (with secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshgate.jsonvalues import as_dict, as_list
from meshgate.protocol import escaped_name, readable_tool_name

CONNECTION_TYPES = ("HTTP", "SSE", "STDIO")
STATUSES = ("active", "inactive", "error")
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_CALL_TIMEOUT_MS = 300_000


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def stdio_shown(stdio: Mapping[str, Any]) -> dict[str, Any]:
    """What reads show of a STDIO command: it is configuration (issue 22), only `envVars` values are secret."""
    return {
        "command": stdio.get("command"),
        "args": [str(arg) for arg in as_list(stdio.get("args"))],
        "cwd": stdio.get("cwd"),
        "env": sorted(as_dict(stdio.get("envVars"))),
    }


def oauth_shown(oauth: Mapping[str, Any]) -> dict[str, Any]:
    """What reads show of an OAuth setup: client id and scope (configuration), whether a client secret is set."""
    return {
        "client_id": oauth.get("client_id"),
        "scope": oauth.get("scope"),
        "client_secret": {"set": oauth.get("client_secret") is not None},
    }


@dataclass(frozen=True, slots=True)
class ConnectionSecrets:
    """Everything write-only about a connection, sealed as one value in the vault."""

    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict[str, str])
    stdio: Mapping[str, Any] | None = None
    configuration_state: Mapping[str, Any] | None = None
    oauth: Mapping[str, Any] | None = None  # OAuth instead of a static token: {client_id?, client_secret?, scope?}

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "headers": dict(self.headers),
            "stdio": None if self.stdio is None else dict(self.stdio),
            "configuration_state": None if self.configuration_state is None else dict(self.configuration_state),
            "oauth": None if self.oauth is None else dict(self.oauth),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionSecrets:
        return cls(
            token=data.get("token"),
            headers=data.get("headers") or {},
            stdio=data.get("stdio"),
            configuration_state=data.get("configuration_state"),
            oauth=data.get("oauth"),
        )


@dataclass(frozen=True, slots=True)
class Discovery:
    """What meshgate learned by contacting the server."""

    server_info: Mapping[str, Any] | None
    instructions: str | None
    tools: list[dict[str, Any]]
    protocol_version: str | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection as reads show it: whether secrets are set, never their values."""

    id: str
    organization_id: str
    title: str
    description: str | None
    icon: str | None
    connection_type: str
    connection_url: str | None
    token_set: bool
    header_names: list[str]
    # STDIO: {command, args, cwd, env (variable names)}; never the environment's values.
    stdio: Mapping[str, Any] | None
    configuration_state_set: bool
    oauth_enabled: bool
    configuration_scopes: list[str] | None
    metadata: Mapping[str, Any] | None
    status: str
    status_reason: str | None
    server_info: Mapping[str, Any] | None
    instructions: str | None
    tools: list[dict[str, Any]] | None
    connect_timeout_ms: int
    call_timeout_ms: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    # OAuth: {client_id, scope, client_secret: {set}} (None without OAuth, or for rows without the summary).
    oauth_client: Mapping[str, Any] | None = None
    # Secrets an update dropped because the URL moved to another origin (names only, never values).
    dropped_secrets: tuple[str, ...] = ()
    # Upstream tools left out of `tools` because their names could be misread, escaped (security review 18).
    hidden_tools: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            "organization_id": self.organization_id,
            "title": self.title,
            "description": self.description,
            "icon": self.icon,
            "connection_type": self.connection_type,
            "connection_url": self.connection_url,
            "connection_token": {"set": self.token_set},
            "connection_headers": self._headers_shown(),
            "configuration_state": {"set": self.configuration_state_set},
            "oauth": {"enabled": self.oauth_enabled, **(self.oauth_client or {})},
            "configuration_scopes": self.configuration_scopes,
            "metadata": None if self.metadata is None else dict(self.metadata),
            "status": self.status,
            "status_reason": self.status_reason,
            "server_info": None if self.server_info is None else dict(self.server_info),
            "instructions": self.instructions,
            "tools": self.tools,
            "connect_timeout_ms": self.connect_timeout_ms,
            "call_timeout_ms": self.call_timeout_ms,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if self.hidden_tools:
            shown["hidden_tools"] = list(self.hidden_tools)
            shown["hidden_tools_reason"] = (
                "these tool names hold characters outside printable ASCII (control, bidi, zero-width or look-alike "
                "characters), edge spaces, or more than 128 characters: meshgate does not list, offer or call them"
            )
        if self.dropped_secrets:
            shown["dropped_secrets"] = list(self.dropped_secrets)
            shown["dropped_secrets_reason"] = (
                "connection_url moved to another origin: secrets given for the old server are not sent to the new "
                "one; supply them again in the same update to keep them"
            )
        return shown

    def _headers_shown(self) -> dict[str, Any]:
        """`names` are the header names (HTTP, SSE) or environment variable names (STDIO); values never show."""
        if self.stdio is None:
            return {"set": bool(self.header_names), "names": self.header_names}
        return {
            "set": True,
            "names": list(self.stdio.get("env") or []),
            "command": self.stdio.get("command"),
            "args": list(self.stdio.get("args") or []),
            "cwd": self.stdio.get("cwd"),
        }


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """What the proxy needs to reach a connection, secrets included (kept in memory only)."""

    id: str
    organization_id: str
    title: str
    connection_type: str
    url: str | None
    status: str
    secrets: ConnectionSecrets
    connect_timeout_ms: int
    call_timeout_ms: int
    tool_names: frozenset[str] = frozenset()
    # OAuth connections: whether one is configured, and when its access token should be refreshed (epoch s).
    oauth: bool = False
    oauth_refresh_at: float | None = None


def split_tools(tools: Any) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """An upstream's stored tool list: the tools meshgate shows, and the escaped names of those it hides."""
    shown: list[dict[str, Any]] = []
    hidden: list[str] = []
    for item in as_list(tools):
        tool = as_dict(item)
        name = tool.get("name")
        if readable_tool_name(name):
            shown.append(tool)
        else:
            hidden.append(escaped_name(name) if isinstance(name, str) else repr(name)[:200])
    return shown, tuple(hidden)
