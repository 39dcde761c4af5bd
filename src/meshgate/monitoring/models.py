"""Audit values: the raw entry the hot path captures, and the stored record reads return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

AUDITED_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
AI_METHODS = ("ai/chat.completions", "ai/embeddings")  # AI calls: their `tool_name` is the model id
MAX_PAYLOAD_BYTES = 64 * 1024


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class AuditEntry:
    """What the proxy knows about one call; everything costly (parsing, redaction) happens later."""

    organization_id: str
    connection_id: str | None
    method: str
    tool_name: str | None
    user_id: str | None
    api_key_id: str | None
    user_agent: str | None
    request_id: str | None
    protocol_version: str | None
    params: Any
    message_id: Any
    started_at: datetime
    duration_ms: float
    response_body: bytes | None = None
    response_content_type: str = ""
    response_truncated: bool = False
    is_error: bool | None = None
    error_message: str | None = None
    virtual_mcp_id: str | None = None
    client_id: str | None = None
    by_connection: bool = False  # a connection acting for itself (`user_id` is then the connection's id)
    announced: bool = True  # may become a `meshgate.tool_call.completed` event (see `CallContext.announced`)
    tokens_in: int | None = None  # AI calls: what the provider counted
    tokens_out: int | None = None
    cost_usd: float | None = None  # AI calls: from `meshgate.ai.prices`; None for a model it does not list

    @property
    def caller_type(self) -> str:
        if self.by_connection:
            return "connection"
        if self.client_id is not None:
            return "oauth_client"
        return "api_key" if self.api_key_id is not None else "user"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: str
    organization_id: str
    connection_id: str | None
    virtual_mcp_id: str | None
    method: str
    tool_name: str | None
    caller_type: str
    user_id: str | None
    api_key_id: str | None
    client_id: str | None
    user_agent: str | None
    request_id: str | None
    protocol_version: str | None
    input: str | None
    output: str | None
    is_error: bool
    error_message: str | None
    duration_ms: float
    created_at: datetime
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "connectionId": self.connection_id,
            "virtualMcpId": self.virtual_mcp_id,
            "method": self.method,
            "toolName": self.tool_name,
            "caller": {
                "type": self.caller_type,
                "userId": self.user_id,
                "apiKeyId": self.api_key_id,
                "clientId": self.client_id,
            },
            "userAgent": self.user_agent,
            "requestId": self.request_id,
            "protocolVersion": self.protocol_version,
            "input": self.input,
            "output": self.output,
            "isError": self.is_error,
            "errorMessage": self.error_message,
            "durationMs": round(self.duration_ms, 3),
            "createdAt": _iso(self.created_at),
            "tokensIn": self.tokens_in,
            "tokensOut": self.tokens_out,
            "costUsd": self.cost_usd,
        }
