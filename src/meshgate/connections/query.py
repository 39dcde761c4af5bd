"""`where` and `orderBy` of `COLLECTION_CONNECTIONS_LIST`, translated to SQL over an allowlist of fields.

where:   {"field": ["title"], "operator": "eq|ne|gt|gte|lt|lte|in|like|contains", "value": …}
         or {"operator": "and|or|not", "conditions": [where, …]}
orderBy: [{"field": ["title"], "direction": "asc|desc"}]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, not_, or_

from meshgate.errors import InvalidInput
from meshgate.jsonvalues import as_list

FIELDS = ("id", "title", "description", "connection_type", "connection_url", "status", "created_at", "updated_at")
_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "like", "contains")
_MAX_DEPTH = 8


def _field(table: Table, value: Any) -> Any:
    name: Any = as_list(value)[-1] if as_list(value) else value
    if not isinstance(name, str) or name not in FIELDS:
        shown = name if isinstance(name, str) else str(value)
        raise InvalidInput(f"where/orderBy field {shown[:80]!r} is not allowed; use one of {', '.join(FIELDS)}")
    return table.c[name]


def where_clause(table: Table, where: Mapping[str, Any], depth: int = 0) -> ColumnElement[bool]:
    """A SQL condition for a where expression, with errors that say what is allowed."""
    if depth > _MAX_DEPTH:
        raise InvalidInput(f"where is nested more than {_MAX_DEPTH} levels deep")
    operator = where.get("operator")
    if operator in ("and", "or", "not"):
        conditions = where.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise InvalidInput(f"where operator {operator!r} needs a non-empty 'conditions' list")
        parts = [where_clause(table, _mapping(c), depth + 1) for c in conditions]  # pyright: ignore[reportUnknownVariableType]
        if operator == "and":
            return and_(*parts)
        if operator == "or":
            return or_(*parts)
        return not_(and_(*parts))
    if operator not in _COMPARISONS:
        raise InvalidInput(
            f"where operator {str(operator)[:40]!r} is not allowed; use {', '.join(_COMPARISONS)}, and, or, not"
        )
    column = _field(table, where.get("field"))
    value = where.get("value")
    if operator == "in":
        if not isinstance(value, list):
            raise InvalidInput("where operator 'in' needs a list value")
        return column.in_(value)
    if operator in ("like", "contains"):
        if not isinstance(value, str):
            raise InvalidInput(f"where operator {operator!r} needs a string value")
        pattern = value if operator == "like" else f"%{value.replace('%', '').replace('_', '')}%"
        return column.like(pattern)
    comparisons = {
        "eq": column.__eq__,
        "ne": column.__ne__,
        "gt": column.__gt__,
        "gte": column.__ge__,
        "lt": column.__lt__,
        "lte": column.__le__,
    }
    return comparisons[operator](value)


def order_by(table: Table, order: list[Mapping[str, Any]] | None) -> list[Any]:
    if not order:
        return [table.c.created_at, table.c.id]
    clauses: list[Any] = []
    for item in order:
        column = _field(table, item.get("field"))
        direction = item.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"orderBy direction {str(direction)[:20]!r} is not allowed; use asc or desc")
        clauses.append(column.desc() if direction == "desc" else column.asc())
    return [*clauses, table.c.id]


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("each where condition must be an object")
    return value  # pyright: ignore[reportUnknownVariableType]
