"""The wire shape of errors is pinned: clients depend on it."""

from __future__ import annotations

import json

import pytest

from meshgate import errors
from meshgate.http.errors import http_error, mcp_http_error
from meshgate.jsonrpc import error_message, refusal_result
from meshgate.mcp.results import failure

# Every class of the tree with a code of its own (a new one without an entry here fails
# `test_every_error_class_is_pinned`; subclasses elsewhere may only narrow a class, keeping its code).
ALL = [
    (errors.InvalidInput, "invalid_input", 400),
    (errors.MalformedJson, "invalid_json", 400),
    (errors.Unauthenticated, "unauthenticated", 401),
    (errors.PermissionDenied, "permission_denied", 403),
    (errors.NotFound, "not_found", 404),
    (errors.Conflict, "conflict", 409),
    (errors.PayloadTooLarge, "payload_too_large", 413),
    (errors.RateLimited, "rate_limited", 429),
    (errors.TokenBudgetExhausted, "token_budget_exhausted", 429),
    (errors.UnsupportedMediaType, "unsupported_media_type", 415),
    (errors.ConfigurationError, "configuration", 500),
    (errors.OAuthError, "oauth_error", 400),
    (errors.UpstreamError, "upstream_error", 502),
    (errors.UpstreamUnreachable, "upstream_unreachable", 502),
    (errors.UpstreamInvalidResponse, "upstream_invalid", 502),
    (errors.UpstreamUnavailable, "upstream_unavailable", 503),
    (errors.UpstreamAuthorizationRequired, "upstream_authorization_required", 502),
    (errors.OAuthSetupError, "upstream_oauth", 502),
    (errors.UpstreamRpcError, "upstream_rpc_error", 502),
    (errors.UpstreamTimeout, "upstream_timeout", 504),
    (errors.SandboxError, "sandbox_error", 500),
    (errors.SandboxProgramError, "sandbox_program_error", 422),
    (errors.SandboxLimitExceeded, "sandbox_limit", 422),
    (errors.SandboxMemoryExceeded, "sandbox_memory_limit", 422),
    (errors.SandboxCpuTimeExceeded, "sandbox_cpu_time_limit", 422),
    (errors.SandboxWallTimeExceeded, "sandbox_wall_time_limit", 422),
    (errors.SandboxOutputTooLarge, "sandbox_output_limit", 422),
    (errors.SandboxTooManyToolCalls, "sandbox_tool_call_limit", 422),
    (errors.ProviderError, "provider_error", 502),
    (errors.ProviderRefused, "provider_refused", 400),
    (errors.ProviderTimeout, "provider_timeout", 504),
    (errors.StorageError, "storage_error", 502),
]
# What a class adds to the common shape.
EXTRA: dict[type[errors.MeshgateError], dict[str, object]] = {errors.UpstreamRpcError: {"rpc": {"code": -1}}}


def make(cls: type[errors.MeshgateError], message: str) -> errors.MeshgateError:
    if issubclass(cls, errors.RateLimited):
        return cls(message, retry_after=2.5)
    if cls is errors.OAuthError:
        return errors.OAuthError("invalid_request", message)
    if cls is errors.UpstreamRpcError:
        return errors.UpstreamRpcError(message, {"code": -1})
    return cls(message)


def test_every_error_class_is_pinned() -> None:
    def tree(cls: type[errors.MeshgateError]) -> set[type[errors.MeshgateError]]:
        return {cls}.union(*(tree(sub) for sub in cls.__subclasses__()))

    import meshgate.app  # noqa: F401, PLC0415  (every module that could subclass an error is loaded)

    coded = {cls for cls in tree(errors.MeshgateError) if "code" in vars(cls)} - {errors.MeshgateError}
    assert coded == {cls for cls, _code, _status in ALL}
    assert all(cls.__module__ == "meshgate.errors" for cls in coded)


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_http_error_shape(cls: type[errors.MeshgateError], code: str, status: int) -> None:
    response = http_error(make(cls, "what went wrong"))
    assert response.status_code == status
    expected = {"code": code, "message": "what went wrong", **EXTRA.get(cls, {})}
    assert json.loads(bytes(response.body)) == {"error": expected}
    assert ("retry-after" in response.headers) == issubclass(cls, errors.RateLimited)


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_mcp_http_error_is_jsonrpc_with_the_meshgate_code_in_data(
    cls: type[errors.MeshgateError], code: str, status: int
) -> None:
    response = mcp_http_error(
        make(cls, "nope"), resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp"
    )
    body = json.loads(bytes(response.body))
    assert response.status_code == status
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["message"] == "nope"
    assert body["error"]["data"] == {"code": code, "message": "nope", **EXTRA.get(cls, {})}
    assert ("www-authenticate" in response.headers) == (cls is errors.Unauthenticated)


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_jsonrpc_errors_and_refusals_are_built_from_the_tree(
    cls: type[errors.MeshgateError], code: str, status: int
) -> None:
    del status  # the same for every wire form; pinned above
    error = make(cls, "it broke")
    message = error_message(7, error)
    assert message["id"] == 7 and message["error"]["data"]["code"] == code
    # A malformed message is a JSON-RPC error of the protocol; anything else is the gateway's own answer.
    malformed = {"invalid_json": -32700, "invalid_input": -32600, "payload_too_large": -32600}
    malformed["unsupported_media_type"] = -32600
    assert message["error"]["code"] == malformed.get(code, -32001)
    refusal = refusal_result(error, "2026-07-28")
    assert refusal == {
        "resultType": "complete",
        "content": [{"type": "text", "text": f"{code}: it broke"}],
        "isError": True,
    }
    assert "resultType" not in refusal_result(error, "2025-11-25")


def test_malformed_json_maps_to_the_jsonrpc_parse_error() -> None:
    body = json.loads(bytes(mcp_http_error(errors.MalformedJson("not JSON")).body))
    assert body["error"]["code"] == -32700
    assert json.loads(bytes(mcp_http_error(errors.InvalidInput("bad")).body))["error"]["code"] == -32600


def test_tool_failure_is_an_is_error_result_with_one_line() -> None:
    result = failure(errors.NotFound("role r-1 not found"))
    assert result.is_error is True
    assert result.content[0].text == "not_found: role r-1 not found"  # type: ignore[union-attr]
    assert result.structured_content == {"error": {"code": "not_found", "message": "role r-1 not found"}}
