"""How results are printed: `json` (indented, for scripts and `jq`) or `table` (for people)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from meshgate.jsonvalues import as_dict

CELL_WIDTH = 60


def as_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else orjson.dumps(value).decode()
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def rows_of(value: Any) -> list[dict[str, Any]] | None:
    """The rows a result holds: a list of objects, or the `items` of a collection answer."""
    if isinstance(as_dict(value).get("items"), list):
        value = as_dict(value)["items"]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):  # pyright: ignore[reportUnknownVariableType]
        return list(value)  # pyright: ignore[reportUnknownArgumentType]
    return None


def as_table(value: Any, columns: Sequence[str] | None = None) -> str:
    """Rows as aligned columns (`columns` first, when given); a single object as field/value pairs."""
    rows = rows_of(value)
    if rows is None:
        if isinstance(value, dict):
            pairs: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
            rows, columns = [{"field": k, "value": v} for k, v in pairs.items()], ["field", "value"]
        else:
            return _cell(value)
    if not rows:
        return "(none)"
    names = list(columns or [])
    if not names:
        for row in rows:
            names.extend(key for key in row if key not in names)
    table = [[name.upper() for name in names], *[[_cell(row.get(name)) for name in names] for row in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(names))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table
    )


def render(value: Any, output: str, columns: Sequence[str] | None = None) -> str:
    return as_json(value) if output == "json" else as_table(value, columns)
