"""The wire shape of errors is pinned: clients depend on it."""

from __future__ import annotations

import json

import pytest

from meshgate import errors
from meshgate.http.errors import http_error, mcp_http_error
from meshgate.mcp.results import failure

ALL = [
    (errors.InvalidInput, "invalid_input", 400),
    (errors.MalformedJson, "invalid_json", 400),
    (errors.Unauthenticated, "unauthenticated", 401),
    (errors.PermissionDenied, "permission_denied", 403),
    (errors.NotFound, "not_found", 404),
    (errors.Conflict, "conflict", 409),
    (errors.PayloadTooLarge, "payload_too_large", 413),
    (errors.UnsupportedMediaType, "unsupported_media_type", 415),
    (errors.ConfigurationError, "configuration", 500),
]


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_http_error_shape(cls: type[errors.MeshgateError], code: str, status: int) -> None:
    response = http_error(cls("what went wrong"))
    assert response.status_code == status
    assert json.loads(bytes(response.body)) == {"error": {"code": code, "message": "what went wrong"}}


@pytest.mark.parametrize(("cls", "code", "status"), ALL)
def test_mcp_http_error_is_jsonrpc_with_the_meshgate_code_in_data(
    cls: type[errors.MeshgateError], code: str, status: int
) -> None:
    response = mcp_http_error(cls("nope"), resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp")
    body = json.loads(bytes(response.body))
    assert response.status_code == status
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert body["error"]["message"] == "nope"
    assert body["error"]["data"] == {"code": code, "message": "nope"}
    assert ("www-authenticate" in response.headers) == (cls is errors.Unauthenticated)


def test_malformed_json_maps_to_the_jsonrpc_parse_error() -> None:
    body = json.loads(bytes(mcp_http_error(errors.MalformedJson("not JSON")).body))
    assert body["error"]["code"] == -32700
    assert json.loads(bytes(mcp_http_error(errors.InvalidInput("bad")).body))["error"]["code"] == -32600


def test_tool_failure_is_an_is_error_result_with_one_line() -> None:
    result = failure(errors.NotFound("role r-1 not found"))
    assert result.is_error is True
    assert result.content[0].text == "not_found: role r-1 not found"  # type: ignore[union-attr]
    assert result.structured_content == {"error": {"code": "not_found", "message": "role r-1 not found"}}
