"""Arguments templates: a tool's arguments built from an event with JSON pointers (RFC 6901), no code.

A template is a JSON object; the event it is filled from is the CloudEvent in its JSON form (`/id`, `/type`,
`/source`, `/subject`, `/time`, `/data/...`). Two forms take values from it, anywhere in the template:

- `{"$event": "/data/title"}` is replaced by the value at the pointer, whatever its type;
  `{"$event": "/data/title", "default": "untitled"}` when the event may lack it.
- `"New issue: {{/data/title}}"`: each `{{pointer}}` in a string is replaced by the value's text (a string
  as it is, anything else as JSON).

Everything else is copied as it is. Other keys starting with `$` are reserved (refused), so a misspelt
`$evnt` fails when the automation is saved, not when it runs. A pointer the event does not have (and no
default) fails the run with the pointer named. Templates are bounded in size and depth.
"""

from __future__ import annotations

import re
from typing import Any, cast

import orjson

from meshgate.errors import InvalidInput

MAX_TEMPLATE_BYTES = 16 * 1024
MAX_DEPTH = 10
MAX_POINTER = 256
EVENT_KEY = "$event"
DEFAULT_KEY = "default"
_INTERPOLATION = re.compile(r"\{\{(/[^{}]*)\}\}")
_ALLOWED = 'allowed: plain JSON, {"$event": "/data/x"} (optionally with "default"), and "text {{/data/x}}" in strings'


class MissingValue(Exception):
    """The event has nothing at a pointer the template needs."""


def checked_template(template: Any) -> dict[str, Any]:
    """The template as given, or a refusal that says where it is wrong and what is allowed."""
    if not isinstance(template, dict):
        raise InvalidInput("arguments must be a JSON object (the tool's arguments, with values from the event)")
    size = len(orjson.dumps(template))
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"arguments is {size} bytes as JSON; at most {MAX_TEMPLATE_BYTES} are allowed")
    _check(template, "arguments", 1)
    return cast("dict[str, Any]", template)


def filled(template: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The arguments for one event (raises `MissingValue` naming the pointer the event lacks)."""
    return cast("dict[str, Any]", _fill(template, event))


def resolve(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 pointer (raises `MissingValue`)."""
    found = document
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(found, dict) and key in found:
            found = cast("dict[str, Any]", found)[key]
        elif isinstance(found, list) and (key == "0" or (key.isdigit() and key[0] != "0")):
            items = cast("list[Any]", found)
            if int(key) >= len(items):
                raise MissingValue(pointer)
            found = items[int(key)]
        else:
            raise MissingValue(pointer)
    return found


def _fill(template: Any, event: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        given = cast("dict[str, Any]", template)
        if EVENT_KEY in given:
            try:
                return resolve(event, given[EVENT_KEY])
            except MissingValue:
                if DEFAULT_KEY in given:
                    return given[DEFAULT_KEY]
                raise
        return {key: _fill(value, event) for key, value in given.items()}
    if isinstance(template, list):
        return [_fill(item, event) for item in cast("list[Any]", template)]
    if isinstance(template, str) and "{{" in template:
        return _INTERPOLATION.sub(lambda match: _text(resolve(event, match.group(1))), template)
    return template


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _check(template: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: arguments nest at most {MAX_DEPTH} deep")
    if isinstance(template, dict):
        given = cast("dict[str, Any]", template)
        if EVENT_KEY in given:
            _check_reference(given, where)
            return
        for key, value in given.items():
            if key.startswith("$"):
                raise InvalidInput(f"{where}: {key[:40]!r} is reserved (keys starting with $); {_ALLOWED}")
            _check(value, f"{where}.{key}", depth + 1)
    elif isinstance(template, list):
        for index, item in enumerate(cast("list[Any]", template)):
            _check(item, f"{where}[{index}]", depth + 1)
    elif isinstance(template, str):
        for match in _INTERPOLATION.finditer(template):
            _check_pointer(match.group(1), where)
        if "{{" in _INTERPOLATION.sub("", template):
            raise InvalidInput(f"{where}: {{{{ must start a pointer like {{{{/data/title}}}}; {_ALLOWED}")


def _check_reference(reference: dict[str, Any], where: str) -> None:
    extra = set(reference) - {EVENT_KEY, DEFAULT_KEY}
    if extra:
        raise InvalidInput(f"{where}: a $event value takes only {DEFAULT_KEY!r} beside it, not {sorted(extra)[0]!r}")
    pointer = reference[EVENT_KEY]
    if not isinstance(pointer, str):
        raise InvalidInput(f'{where}.$event must be a JSON pointer string, e.g. "/data/title"')
    _check_pointer(pointer, f"{where}.$event")


def _check_pointer(pointer: str, where: str) -> None:
    if len(pointer) > MAX_POINTER:
        raise InvalidInput(f"{where}: a pointer has at most {MAX_POINTER} characters")
    if not pointer.startswith("/") or re.search(r"~(?![01])", pointer):
        raise InvalidInput(
            f"{where}: {pointer[:80]!r} is not a JSON pointer (RFC 6901): it starts with / and escapes"
            " ~ as ~0 and / as ~1, e.g. /data/title"
        )
