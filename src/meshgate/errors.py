"""The one error tree of meshgate.

Every error a person or a client can see is a `MeshgateError` with a stable `code`:

    MeshgateError                      code               HTTP
    ├── InvalidInput                   invalid_input      400
    │   └── MalformedJson              invalid_json       400  (JSON-RPC parse error, -32700)
    ├── Unauthenticated                unauthenticated    401
    ├── PermissionDenied               permission_denied  403
    ├── NotFound                       not_found          404
    ├── Conflict                       conflict           409
    ├── PayloadTooLarge                payload_too_large  413
    ├── RateLimited                    rate_limited       429  (with Retry-After)
    │   └── TokenBudgetExhausted       token_budget_exhausted 429  (a key's or organization's AI tokens)
    ├── UnsupportedMediaType           unsupported_media  415
    ├── ConfigurationError             configuration      500  (start-up: bad settings, wrong key)
    ├── OAuthError                     oauth_error        400/401  (RFC 6749 §5.2 body: error, error_description)
    └── UpstreamError                  upstream_error     502  (a downstream MCP server failed us)
        ├── UpstreamUnreachable        upstream_unreachable   502
        ├── UpstreamInvalidResponse    upstream_invalid       502
        ├── UpstreamUnavailable        upstream_unavailable   503  (circuit open, connection inactive)
        ├── UpstreamAuthorizationRequired upstream_authorization_required 502 (OAuth upstream: authorize again)
        ├── OAuthSetupError            upstream_oauth         502  (an upstream's OAuth setup cannot be used)
        ├── UpstreamRpcError           upstream_rpc_error     502  (the upstream answered a JSON-RPC error)
        ├── UpstreamTimeout            upstream_timeout       504
        ├── ProviderError              provider_error         502  (an AI provider failed or answered garbage)
        │   ├── ProviderRefused        provider_refused       400  (the provider refused the request as invalid)
        │   └── ProviderTimeout        provider_timeout       504
        └── StorageError               storage_error          502  (an organization's object store failed us)
    SandboxError                       sandbox_error      500  (the JavaScript engine failed, not the program)
    ├── SandboxProgramError            sandbox_program_error  422  (the program threw or does not parse)
    └── SandboxLimitExceeded           sandbox_limit          422  (a run hit one of its hard limits)
        ├── SandboxMemoryExceeded      sandbox_memory_limit   422
        ├── SandboxCpuTimeExceeded     sandbox_cpu_time_limit 422
        ├── SandboxWallTimeExceeded    sandbox_wall_time_limit 422
        ├── SandboxOutputTooLarge      sandbox_output_limit   422
        └── SandboxTooManyToolCalls    sandbox_tool_call_limit 422

Services raise these; `meshgate.http.errors` maps them to HTTP JSON, `meshgate.jsonrpc` to JSON-RPC
error messages and refusals, and `meshgate.mcp.results` to management tool results. Nothing else
decides how an error looks on the wire.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MeshgateError(Exception):
    """Base of every error meshgate reports to a caller."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The wire shape shared by HTTP bodies and tool results."""
        return {"code": self.code, "message": self.message}


class InvalidInput(MeshgateError):
    """The request is malformed or a value is out of range; the message says which and what is allowed."""

    code = "invalid_input"
    http_status = 400


class MalformedJson(InvalidInput):
    """The body is not JSON at all (or nests deeper than the parser allows)."""

    code = "invalid_json"


class Unauthenticated(MeshgateError):
    """No credential, or one that is unknown, expired or revoked."""

    code = "unauthenticated"
    http_status = 401


class PermissionDenied(MeshgateError):
    """The caller is known but may not do this; the message names the missing permission."""

    code = "permission_denied"
    http_status = 403


class NotFound(MeshgateError):
    """The object does not exist, or exists in another organization (the two are indistinguishable)."""

    code = "not_found"
    http_status = 404


class Conflict(MeshgateError):
    """The change would break a uniqueness rule or a limit, or the object is still in use."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(MeshgateError):
    """The request body is over the configured limit."""

    code = "payload_too_large"
    http_status = 413


class RateLimited(MeshgateError):
    """Too many requests for a key or an organization; `retry_after` says when to come back (seconds)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenBudgetExhausted(RateLimited):
    """The AI tokens a key or an organization may use in a period are used up; they refill over time."""

    code = "token_budget_exhausted"


class UnsupportedMediaType(MeshgateError):
    """The request body is not of a content type the endpoint accepts."""

    code = "unsupported_media_type"
    http_status = 415


class ConfigurationError(MeshgateError):
    """Settings or stored state prevent meshgate from starting (for example the wrong vault key)."""

    code = "configuration"
    http_status = 500


class OAuthError(MeshgateError):
    """An OAuth request was refused; `error` is the RFC 6749 / RFC 7591 / RFC 8707 error code."""

    code = "oauth_error"
    http_status = 400

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.status = status

    def oauth_body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message}


class UpstreamError(MeshgateError):
    """A downstream MCP server could not be used; the message names it and says what happened."""

    code = "upstream_error"
    http_status = 502


class UpstreamUnreachable(UpstreamError):
    """The connection to the upstream failed (refused, reset, DNS, TLS)."""

    code = "upstream_unreachable"
    http_status = 502


class UpstreamInvalidResponse(UpstreamError):
    """The upstream answered something that is not MCP."""

    code = "upstream_invalid"
    http_status = 502


class UpstreamUnavailable(UpstreamError):
    """meshgate is not sending to this upstream right now (circuit open, connection inactive)."""

    code = "upstream_unavailable"
    http_status = 503


class UpstreamAuthorizationRequired(UpstreamError):
    """An OAuth-protected upstream has no valid grant from meshgate; someone must authorize it again."""

    code = "upstream_authorization_required"
    http_status = 502


class OAuthSetupError(UpstreamError):
    """The upstream's OAuth setup could not be used; the message says what was missing or refused."""

    code = "upstream_oauth"
    http_status = 502


class UpstreamRpcError(UpstreamError):
    """The upstream answered the request with a JSON-RPC error; `rpc` is that error object as sent."""

    code = "upstream_rpc_error"
    http_status = 502

    def __init__(self, message: str, rpc: dict[str, Any]) -> None:
        super().__init__(message)
        self.rpc = rpc

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "rpc": self.rpc}


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""

    code = "upstream_timeout"
    http_status = 504


class SandboxError(MeshgateError):
    """The sandbox could not run a program (its worker process died or could not start)."""

    code = "sandbox_error"
    http_status = 500


class SandboxProgramError(SandboxError):
    """The program does not parse, threw, or awaits something nothing will settle; the message is its error."""

    code = "sandbox_program_error"
    http_status = 422


class SandboxLimitExceeded(SandboxError):
    """A run was ended by one of its hard limits; the message names the limit and its setting."""

    code = "sandbox_limit"
    http_status = 422


class SandboxMemoryExceeded(SandboxLimitExceeded):
    """The program allocated more than `MESHGATE_SANDBOX_MEMORY_BYTES`."""

    code = "sandbox_memory_limit"


class SandboxCpuTimeExceeded(SandboxLimitExceeded):
    """The program computed longer than `MESHGATE_SANDBOX_CPU_SECONDS`."""

    code = "sandbox_cpu_time_limit"


class SandboxWallTimeExceeded(SandboxLimitExceeded):
    """The run (tool calls included) lasted longer than `MESHGATE_SANDBOX_WALL_SECONDS`."""

    code = "sandbox_wall_time_limit"


class SandboxOutputTooLarge(SandboxLimitExceeded):
    """console output and the returned value together passed `MESHGATE_SANDBOX_OUTPUT_BYTES`."""

    code = "sandbox_output_limit"


class SandboxTooManyToolCalls(SandboxLimitExceeded):
    """The program called tools more than `MESHGATE_SANDBOX_TOOL_CALLS` times."""

    code = "sandbox_tool_call_limit"


class ProviderError(UpstreamError):
    """An AI provider (OpenAI, Anthropic, …) could not be used: unreachable, an error, or not its API's answer."""

    code = "provider_error"
    http_status = 502


class ProviderRefused(ProviderError):
    """The AI provider refused the request itself as invalid (HTTP 400, 404, 422); its reason is in the message."""

    code = "provider_refused"
    http_status = 400


class ProviderTimeout(ProviderError):
    """The AI provider did not answer, or stopped sending, within `MESHGATE_AI_TIMEOUT_SECONDS`."""

    code = "provider_timeout"
    http_status = 504


class StorageError(UpstreamError):
    """An organization's S3-compatible object store could not be reached or refused a request; the message says
    which store and what it answered (never a credential)."""

    code = "storage_error"
    http_status = 502
