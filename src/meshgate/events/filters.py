"""Subscription filters: the dialects of the CloudEvents Subscriptions API, checked once and applied.

A filter is one expression or a list of them (all must match, as the API's `filters` array):
`{"exact": {attr: value}}`, `{"prefix": {attr: value}}`, `{"suffix": {attr: value}}` (each names exactly one
context attribute; an event without the attribute does not match), `{"all": [f, ...]}`, `{"any": [f, ...]}`
(non-empty) and `{"not": f}`. Values compare case-sensitively with the attribute's string form. The optional
`sql` dialect is not offered. Filters are bounded in depth and size, so matching stays cheap on publish.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from meshgate.errors import InvalidInput

MAX_DEPTH = 8
MAX_NODES = 64
MAX_VALUE = 1024
_ATTRIBUTE = re.compile(r"[a-z0-9]{1,20}")  # CloudEvents attribute names
_COMPARISONS = ("exact", "prefix", "suffix")
_DIALECTS = (*_COMPARISONS, "all", "any", "not")


def checked_filter(given: Any) -> Any:
    """The filter as given, or a refusal that says where it is wrong and what is allowed."""
    nodes = [0]
    if isinstance(given, list):
        _check_list(cast("list[Any]", given), "filter", 1, nodes)
    elif given is not None:
        _check(given, "filter", 1, nodes)
    return cast("Any", given)


def matches(given: Any, attributes: Mapping[str, str]) -> bool:
    """Whether an event with these context attributes passes the (checked) filter."""
    if given is None:
        return True
    if isinstance(given, list):
        return all(matches(item, attributes) for item in cast("list[Any]", given))
    expression = cast("dict[str, Any]", given)
    dialect, operand = next(iter(expression.items()))
    if dialect in _COMPARISONS:
        name, value = next(iter(cast("dict[str, str]", operand).items()))
        return _compared(dialect, attributes.get(name), value)
    if dialect == "all":
        return all(matches(item, attributes) for item in operand)
    if dialect == "any":
        return any(matches(item, attributes) for item in operand)
    return not matches(operand, attributes)


def _compared(dialect: str, found: str | None, value: str) -> bool:
    """An event without the attribute matches no comparison."""
    if found is None:
        return False
    if dialect == "exact":
        return found == value
    return found.startswith(value) if dialect == "prefix" else found.endswith(value)


def _check(expression: Any, where: str, depth: int, nodes: list[int]) -> None:
    nodes[0] += 1
    if nodes[0] > MAX_NODES or depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: a filter has at most {MAX_NODES} expressions, nested at most {MAX_DEPTH} deep")
    if not isinstance(expression, dict) or len(cast("dict[str, Any]", expression)) != 1:
        raise InvalidInput(f"{where} must be an object with one of {', '.join(_DIALECTS)}")
    dialect, operand = next(iter(cast("dict[str, Any]", expression).items()))
    inner = f"{where}.{dialect}"
    if dialect in _COMPARISONS:
        if not isinstance(operand, dict) or len(cast("dict[str, Any]", operand)) != 1:
            raise InvalidInput(f'{inner} must name exactly one attribute, e.g. {{"type": "order.created"}}')
        name, value = next(iter(cast("dict[str, Any]", operand).items()))
        if not _ATTRIBUTE.fullmatch(name):
            raise InvalidInput(f"{inner}: {name[:40]!r} is not an attribute name (a-z and 0-9, up to 20)")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise InvalidInput(f"{inner}.{name} must be a string of up to {MAX_VALUE} characters")
    elif dialect in ("all", "any"):
        if not isinstance(operand, list) or not operand:
            raise InvalidInput(f"{inner} must be a non-empty list of filters")
        _check_list(cast("list[Any]", operand), inner, depth + 1, nodes)
    elif dialect == "not":
        _check(operand, inner, depth + 1, nodes)
    else:
        raise InvalidInput(f"{where}: unknown filter dialect {dialect[:40]!r}; allowed: {', '.join(_DIALECTS)}")


def _check_list(items: list[Any], where: str, depth: int, nodes: list[int]) -> None:
    for index, item in enumerate(items):
        _check(item, f"{where}[{index}]", depth, nodes)
