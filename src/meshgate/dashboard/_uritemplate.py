"""RFC 6570 URI templates of levels 1 to 3 (no level 4 prefix or explode modifiers): the variables a resource
template's form asks for, and the URI their values expand to.

MCP's `resources/templates/list` gives `uriTemplate`s in this syntax; servers mostly use level 1 (`{name}`).
A value that is empty counts as undefined, so a query variable left empty is left out of the URI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from meshgate.errors import InvalidInput

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*")
_TRIPLET = re.compile(r"(%[0-9A-Fa-f]{2})")
_RESERVED = ":/?#[]@!$&'()*+,;="
MAX_VARIABLES = 50


@dataclass(frozen=True, slots=True)
class _Operator:
    """RFC 6570 appendix A: what an expression's operator puts first and between values."""

    first: str
    separator: str
    named: bool
    reserved: bool  # reserved characters (and %XX triplets) pass unencoded


_OPERATORS = {
    "": _Operator("", ",", named=False, reserved=False),
    "+": _Operator("", ",", named=False, reserved=True),
    "#": _Operator("#", ",", named=False, reserved=True),
    ".": _Operator(".", ".", named=False, reserved=False),
    "/": _Operator("/", "/", named=False, reserved=False),
    ";": _Operator(";", ";", named=True, reserved=False),
    "?": _Operator("?", "&", named=True, reserved=False),
    "&": _Operator("&", "&", named=True, reserved=False),
}


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable; `required` for those in a path (simple and reserved expansion), where leaving one
    out changes which resource the URI names."""

    name: str
    required: bool


def variables(template: str) -> list[Variable]:
    """The template's variables in order of first appearance (raises `InvalidInput` for syntax it cannot expand)."""
    found: dict[str, Variable] = {}
    for operator, names in _expressions(template):
        for name in names:
            found.setdefault(name, Variable(name, required=operator in ("", "+")))
    if len(found) > MAX_VARIABLES:
        raise InvalidInput(f"the template has {len(found)} variables; at most {MAX_VARIABLES} are expanded")
    return list(found.values())


def expand(template: str, values: Mapping[str, str]) -> str:
    """The URI `template` names with these values, each percent-encoded as its expression requires."""
    parsed = _expressions(template)  # checks the whole template first
    pieces: list[str] = []
    position = 0
    for match, (operator, names) in zip(_EXPRESSION.finditer(template), parsed, strict=True):
        pieces.append(template[position : match.start()])
        pieces.append(_expand_one(_OPERATORS[operator], names, values))
        position = match.end()
    pieces.append(template[position:])
    return "".join(pieces)


def _expressions(template: str) -> list[tuple[str, list[str]]]:
    if template.count("{") != template.count("}"):
        raise InvalidInput("the URI template has an unbalanced brace")
    parsed: list[tuple[str, list[str]]] = []
    for match in _EXPRESSION.finditer(template):
        body = match.group(1)
        operator = body[:1] if body[:1] in _OPERATORS and body[:1] != "" else ""
        names = body[len(operator) :].split(",")
        for name in names:
            if name.endswith("*") or ":" in name:
                raise InvalidInput(
                    f"the template expression {{{body[:60]}}} uses a prefix or explode modifier (RFC 6570 level 4), "
                    "which this form does not expand: read the resource by its URI instead"
                )
            if _VARNAME.fullmatch(name) is None:
                raise InvalidInput(f"the template expression {{{body[:60]}}} is not a valid RFC 6570 expression")
        parsed.append((operator, names))
    return parsed


def _expand_one(operator: _Operator, names: list[str], values: Mapping[str, str]) -> str:
    parts: list[str] = []
    for name in names:
        value = values.get(name, "")
        if not value:
            continue
        encoded = _encode(value, reserved=operator.reserved)
        parts.append(f"{name}={encoded}" if operator.named else encoded)
    return operator.first + operator.separator.join(parts) if parts else ""


def _encode(value: str, *, reserved: bool) -> str:
    if not reserved:
        return quote(value, safe="")  # unreserved characters only (ALPHA, DIGIT, "-", ".", "_", "~")
    # Reserved expansion keeps reserved characters and existing %XX triplets, and encodes a lone "%".
    return "".join(
        piece if _TRIPLET.fullmatch(piece) else quote(piece, safe=_RESERVED) for piece in _TRIPLET.split(value)
    )
