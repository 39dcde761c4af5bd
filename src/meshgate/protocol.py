"""MCP protocol versions and the names of the stateless era's envelope: the one place that knows them.

Two generations: the handshake era (`initialize`, `Mcp-Session-Id`) and the stateless era (`2026-07-28`:
per-request `_meta`, `server/discover`, `input_required`). Code asks `is_stateless(version)` instead of
comparing version strings.
"""

from __future__ import annotations

import base64
import re
from typing import Any

# Newest first: the first is what meshgate offers when a client asks for a version it does not know.
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[0]
STATELESS_VERSION = "2026-07-28"
STATELESS_VERSIONS = frozenset({STATELESS_VERSION})
SUPPORTED_VERSIONS = (STATELESS_VERSION, *HANDSHAKE_VERSIONS)

ENVELOPE_PREFIX = "io.modelcontextprotocol/"
PROTOCOL_VERSION_META = ENVELOPE_PREFIX + "protocolVersion"
CLIENT_CAPABILITIES_META = ENVELOPE_PREFIX + "clientCapabilities"
CLIENT_INFO_META = ENVELOPE_PREFIX + "clientInfo"
SERVER_INFO_META = ENVELOPE_PREFIX + "serverInfo"
SUBSCRIPTION_ID_META = ENVELOPE_PREFIX + "subscriptionId"


def is_stateless(protocol_version: str | None) -> bool:
    """Whether a request of this protocol version belongs to the stateless era (no handshake, no session).

    Versions after 2026-07-28 that meshgate does not know yet are taken as stateless too: the era does not
    go back to handshakes, and dated versions sort as strings."""
    if protocol_version is None:
        return False
    if protocol_version in STATELESS_VERSIONS:
        return True
    return protocol_version[:4].isdigit() and protocol_version > STATELESS_VERSION


def handshake_version(asked: Any) -> str:
    """The handshake-era version meshgate answers an `initialize` that asked for `asked`."""
    return asked if isinstance(asked, str) and asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSION


def completed(result: dict[str, Any], protocol_version: str | None) -> dict[str, Any]:
    """A result as a stateless-era client needs it (`resultType: complete`); unchanged for the handshake era."""
    if is_stateless(protocol_version) and "resultType" not in result:
        return {"resultType": "complete", **result}
    return result


# Stateless-era requests name their method and target in headers too (`Mcp-Method`, `Mcp-Name`), so that
# routers need not read the body. meshgate rebuilds both from the message it authorized.
NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_SENTINEL = re.compile(r"=\?base64\?.*\?=")


def header_value(value: str) -> str:
    """A value as an `Mcp-Name` header carries it: verbatim when it is plain printable ASCII without edge
    whitespace, else wrapped as `=?base64?<utf-8 as base64>?=`."""
    plain = all(" " <= char <= "~" for char in value) and value == value.strip()
    if plain and not _SENTINEL.fullmatch(value):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def routing_headers(method: str, params: Any) -> dict[str, str]:
    """`Mcp-Method` and (for methods that name something) `Mcp-Name` for one stateless-era request.

    The method is the client's text too: encoded like a name, a CR/LF in it cannot add a header upstream."""
    headers = {"mcp-method": header_value(method)}
    key = NAMED_BY.get(method)
    name = params.get(key) if key is not None and isinstance(params, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(name, str):
        headers["mcp-name"] = header_value(name)
    return headers


def handshake_params(params: Any) -> dict[str, Any]:
    """Params without the stateless era's envelope (`io.modelcontextprotocol/*` in `_meta`), which a
    handshake-era session refuses; progress tokens and other `_meta` entries stay."""
    result: dict[str, Any] = dict(params) if isinstance(params, dict) else {}  # pyright: ignore[reportUnknownArgumentType]
    meta = result.get("_meta")
    if isinstance(meta, dict):
        kept = {key: value for key, value in meta.items() if not str(key).startswith(ENVELOPE_PREFIX)}  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if kept:
            result["_meta"] = kept
        else:
            result.pop("_meta")
    return result


# MCP's tool name rule (2025-11-25, SEP-986) is `[A-Za-z0-9_.-]{1,128}`, as a SHOULD. meshgate hides only the
# names a person could misread: anything outside printable ASCII (control, bidi, zero-width and look-alike
# characters), edge spaces, or past 128 characters. Printable names like `weird name` or `a/b` stay: they read as
# what they are, and virtual MCPs rename them into the strict rule.
_TOOL_NAME = re.compile(r"[!-~](?:[ -~]{0,126}[!-~])?")


def readable_tool_name(name: object) -> bool:
    """Whether an upstream tool name can be listed, offered in permission pickers and called through meshgate."""
    return isinstance(name, str) and _TOOL_NAME.fullmatch(name) is not None


def escaped_name(name: str, limit: int = 200) -> str:
    r"""`name` with every character outside printable ASCII, `\` and edge spaces written as `\uXXXX`
    (for showing a hidden name: what it holds, not what it would look like)."""
    cut = name[:limit]
    last = len(cut) - 1
    shown = "".join(
        char if ("!" <= char <= "~" and char != "\\") or (char == " " and 0 < index < last) else f"\\u{ord(char):04x}"
        for index, char in enumerate(cut)
    )
    return shown + ("…" if len(name) > limit else "")
