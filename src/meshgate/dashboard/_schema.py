"""A form from a tool's `inputSchema` (or a prompt's arguments), and the arguments back from the submitted form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.errors import InvalidInput
from meshgate.jsonvalues import as_dict, as_list

PREFIX = "arg."
RAW = "raw_arguments"


@dataclass(frozen=True, slots=True)
class ArgumentField:
    """One input of the "try it" form: `kind` is text, number, integer, boolean, choice or json."""

    name: str
    kind: str
    required: bool
    description: str
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def fields_of(schema: dict[str, Any]) -> list[ArgumentField]:
    """The schema's top-level properties as form fields (nested values are edited as JSON)."""
    required = {str(name) for name in as_list(schema.get("required"))}
    fields: list[ArgumentField] = []
    for name, raw in as_dict(schema.get("properties")).items():
        prop = as_dict(raw)
        kind = _kind(prop)
        choices = tuple(str(value) for value in as_list(prop.get("enum"))) if kind == "choice" else ()
        description = str(prop.get("description") or prop.get("title") or "")
        fields.append(ArgumentField(name, kind, name in required, description[:500], choices))
    return fields


# Keys that say nothing about arguments: a schema with only these (and no properties) takes none.
_PLAIN_KEYS = frozenset({"type", "properties", "required", "$schema", "title", "description", "additionalProperties"})


def takes_no_arguments(schema: dict[str, Any]) -> bool:
    """An object schema with no properties and nothing else that could describe arguments: the page offers a
    single "Run" button (a schema with other keywords, say `oneOf`, still gets the raw JSON box)."""
    extra = schema.get("additionalProperties")
    return (
        not as_dict(schema.get("properties"))
        and schema.get("type", "object") == "object"
        and set(schema) <= _PLAIN_KEYS
        and (extra is None or extra is False or extra == {})
    )


def prompt_fields(prompt: dict[str, Any]) -> list[ArgumentField]:
    """A prompt's `arguments` as text fields (MCP prompt arguments are strings)."""
    fields: list[ArgumentField] = []
    for raw in as_list(prompt.get("arguments")):
        argument = as_dict(raw)
        name = argument.get("name")
        if isinstance(name, str) and name:
            description = str(argument.get("description") or argument.get("title") or "")
            fields.append(ArgumentField(name, "text", argument.get("required") is True, description[:500]))
    return fields


def _kind(prop: dict[str, Any]) -> str:
    if prop.get("enum") and all(isinstance(value, str) for value in as_list(prop.get("enum"))):
        return "choice"
    kind = prop.get("type")
    if kind in ("string", "number", "integer", "boolean"):
        return "text" if kind == "string" else str(kind)
    return "json"


def arguments_from(form: dict[str, list[str]], fields: list[ArgumentField]) -> dict[str, Any]:
    """Arguments from the submitted form; empty optional fields are left out. With no fields, a raw JSON object."""
    if not fields:
        text = "".join(form.get(RAW, [])).strip()
        return as_dict(_json(text or "{}", "arguments")) if text.startswith("{") or not text else _not_object()
    arguments: dict[str, Any] = {}
    for item in fields:
        text = "".join(form.get(item.input_name, [])).strip()
        if item.kind == "boolean":
            if text in ("true", "false"):
                arguments[item.name] = text == "true"
            elif item.required:
                raise InvalidInput(f"{item.name} is required: choose true or false")
            continue
        if not text:
            if item.required:
                raise InvalidInput(f"{item.name} is required")
            continue
        arguments[item.name] = _value(item, text)
    return arguments


def _value(item: ArgumentField, text: str) -> Any:
    if item.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(f"{item.name} must be a whole number, not {text[:40]!r}") from None
    if item.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise InvalidInput(f"{item.name} must be a number, not {text[:40]!r}") from None
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if item.kind == "json":
        return _json(text, item.name)
    if item.kind == "choice" and text not in item.choices:
        raise InvalidInput(f"{item.name} must be one of {', '.join(item.choices)}")
    return text


def _json(text: str, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{name} is not valid JSON: {exc}") from None


def _not_object() -> dict[str, Any]:
    raise InvalidInput('arguments must be a JSON object such as {"text": "hello"}')
