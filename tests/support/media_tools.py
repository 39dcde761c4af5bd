"""`--library` tools whose results are more than text: images (one the page may show, one SVG it must not),
audio, resource links (a web one and a `javascript:` one) and embedded resources, for the dashboard's "Try it"."""

from __future__ import annotations

from typing import Any

import mcp_types as types

PIXEL_PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SCRIPTED_SVG = "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciPjxzY3JpcHQ+YWxlcnQoMSk8L3NjcmlwdD48L3N2Zz4="
# A WAV file: a 44-byte header and 4 silent 8-bit samples.
SILENT_WAV = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQQAAACAgICA"
WEB_LINK = "https://example.org/report.pdf?page=2&x=<b>"
SCRIPT_LINK = "javascript:alert(1)"
EMBEDDED_TEXT = "<i>inline</i> & note"

MEDIA_TOOLS = [
    types.Tool(name="picture", description="Two images: a PNG and an SVG", input_schema={"type": "object"}),
    types.Tool(name="sound", description="A short WAV", input_schema={"type": "object", "properties": {}}),
    types.Tool(name="links", description="Two resource links", input_schema={"type": "object"}),
    types.Tool(
        name="embedded",
        description="An embedded text resource and an embedded blob",
        input_schema={"type": "object", "properties": {"note": {"type": "string"}}},
    ),
]
MEDIA = frozenset(tool.name for tool in MEDIA_TOOLS)


def media_tool(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The result of one of `MEDIA_TOOLS`, as a plain dict (the wire form)."""
    if name == "picture":
        content: list[dict[str, Any]] = [
            {"type": "image", "data": PIXEL_PNG, "mimeType": "image/png"},
            {"type": "image", "data": SCRIPTED_SVG, "mimeType": "image/svg+xml"},
        ]
    elif name == "sound":
        content = [{"type": "audio", "data": SILENT_WAV, "mimeType": "audio/wav"}]
    elif name == "links":
        content = [
            {"type": "resource_link", "uri": WEB_LINK, "name": "report", "description": "The full report"},
            {"type": "resource_link", "uri": SCRIPT_LINK, "name": "sneaky"},
        ]
    else:
        text = {"uri": "memo://note.txt", "mimeType": "text/plain", "text": EMBEDDED_TEXT + str(args.get("note", ""))}
        blob = {"uri": "memo://data.bin", "mimeType": "application/octet-stream", "blob": "AAEC"}
        content = [{"type": "resource", "resource": text}, {"type": "resource", "resource": blob}]
    return {"content": content}
