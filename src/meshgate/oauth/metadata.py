"""Discovery documents: RFC 8414 authorization server metadata and RFC 9728 protected resource metadata."""

from __future__ import annotations

import re
from typing import Any

from meshgate.oauth.clients import AUTH_METHODS

# The MCP endpoints that are OAuth protected resources: /mcp, /mcp/{id}, /mcp/virtual/{id}.
_RESOURCE_PATH = re.compile(r"^/mcp(/virtual/[A-Za-z0-9_\-]{1,64}|/(?!virtual$)[A-Za-z0-9_\-]{1,64})?$")


def is_resource_path(path: str) -> bool:
    return bool(_RESOURCE_PATH.match(path))


def resource_of(public_url: str, resource: str | None) -> str | None:
    """The resource path (`/mcp…`) of an RFC 8707 resource indicator that names one of this gateway's endpoints."""
    if resource is None or not resource.startswith(public_url + "/"):
        return None
    path = resource[len(public_url) :]
    return path if is_resource_path(path) else None


def authorization_server(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "registration_endpoint": f"{issuer}/oauth/register",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "scope_syntax": "resource:tool, e.g. self:ORGANIZATION_LIST or <connection id>:*",
    }


def openid_configuration(issuer: str) -> dict[str, Any]:
    """OpenID Connect discovery for clients that look there first; meshgate issues no ID tokens."""
    return {
        **authorization_server(issuer),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["none"],
    }


def protected_resource(public_url: str, path: str) -> dict[str, Any]:
    return {
        "resource": public_url + path,
        "authorization_servers": [public_url],
        "bearer_methods_supported": ["header"],
        "resource_name": "meshgate" if path == "/mcp" else f"meshgate {path}",
        "resource_documentation": f"{public_url}/login",
    }
