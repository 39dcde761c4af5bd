"""TypeScript declarations of tools, generated from their JSON Schemas, for programs that call them."""

from __future__ import annotations

import re
from typing import Any

import orjson

from meshgate.jsonvalues import as_dict, as_list

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_MAX_DEPTH = 6
_PRIMITIVES = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean", "null": "null"}


def key(name: str) -> str:
    """A property name as TypeScript writes it (quoted when it is not an identifier)."""
    return name if _IDENTIFIER.match(name) else orjson.dumps(name).decode()


def type_of(schema: Any, depth: int = 0) -> str:  # noqa: PLR0911  (one answer per kind of schema)
    """The TypeScript type a JSON Schema describes; `unknown` where it cannot say ($ref, deep nesting)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "unknown"
    schema_map: dict[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
    if "const" in schema_map:
        return orjson.dumps(schema_map["const"]).decode()
    enum = schema_map.get("enum")
    if isinstance(enum, list) and enum:
        return " | ".join(orjson.dumps(value).decode() for value in enum)  # pyright: ignore[reportUnknownVariableType]
    for combinator, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
        options = schema_map.get(combinator)
        if isinstance(options, list) and options:
            return "(" + joiner.join(type_of(option, depth + 1) for option in options) + ")"  # pyright: ignore[reportUnknownVariableType]
    kind = schema_map.get("type")
    if isinstance(kind, list):
        return " | ".join(type_of({**schema_map, "type": one}, depth) for one in kind) or "unknown"  # pyright: ignore[reportUnknownVariableType]
    if kind in _PRIMITIVES:
        return _PRIMITIVES[str(kind)]
    if kind == "array":
        return f"Array<{type_of(schema_map.get('items'), depth + 1)}>"
    if kind == "object" or "properties" in schema_map:
        return _object(schema_map, depth)
    return "unknown"


def _object(schema: dict[str, Any], depth: int) -> str:
    properties = schema.get("properties")
    required = schema.get("required")
    needed = {str(name) for name in as_list(required)}
    fields: list[str] = []
    for name, sub in as_dict(properties).items():
        text = f"{key(name)}{'' if name in needed else '?'}: {type_of(sub, depth + 1)};"
        description = as_dict(sub).get("description")
        fields.append(f"{_comment(str(description))} {text}" if description else text)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        fields.append(f"[key: string]: {type_of(extra, depth + 1)};")
    elif not fields and extra is not False:
        return "Record<string, unknown>"
    return "{ " + " ".join(fields) + " }"


def _comment(text: str) -> str:
    return "/** " + text.replace("*/", "* /").replace("\n", " ")[:300] + " */"


def declaration(tool: dict[str, Any]) -> str:
    """`tools.<name>(args: Input): Promise<Output>` for one tool, its description as a doc comment."""
    name = str(tool.get("name", ""))
    arguments = type_of(tool.get("inputSchema") or {"type": "object"})
    output = tool.get("outputSchema")
    returned = type_of(output) if output is not None else "unknown"
    description = tool.get("description")
    head = _comment(str(description)) + "\n" if description else ""
    return f"{head}{key(name)}(args: {arguments}): Promise<{returned}>;"
