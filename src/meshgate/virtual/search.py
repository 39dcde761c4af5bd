"""Search mode (`/mcp/virtual/{id}?mode=search`): three tools in place of hundreds.

A model with a small context asks `search_tools` for what it needs, reads the full schemas of a few
with `describe_tools`, and calls one with `call_tool`. Ranking is term matching over name, description
and connection title, with rarer terms counting more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

SEARCH_TOOL = "search_tools"
DESCRIBE_TOOL = "describe_tools"
CALL_TOOL = "call_tool"
MAX_RESULTS = 50
_WORD = re.compile(r"[a-z0-9]+")
_SUMMARY_CHARS = 300

SEARCH_TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": SEARCH_TOOL,
        "description": "Find tools by what they do. Returns names, short descriptions and connections, best first.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words describing the task, e.g. 'create github issue'"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 10},
            },
            "required": ["query"],
        },
    },
    {
        "name": DESCRIBE_TOOL,
        "description": "Full definitions (input schemas) of tools found with search_tools.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "names": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_RESULTS}
            },
            "required": ["names"],
        },
    },
    {
        "name": CALL_TOOL,
        "description": "Call a tool by the name search_tools gave, with its arguments.",
        "inputSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
            "required": ["name"],
        },
    },
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("_", " "))


def rank(
    query: str, tools: Sequence[dict[str, Any]], connection_titles: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The `limit` best-matching tools as {name, description, connection, score}; nothing when no term matches."""
    terms = set(_words(query))
    if not terms:
        return []
    documents = [
        (set(_words(str(tool.get("name", "")))), set(_words(str(tool.get("description") or ""))), set(_words(title)))
        for tool, title in zip(tools, connection_titles, strict=True)
    ]
    frequency = {term: sum(1 for doc in documents if any(term in part for part in doc)) for term in terms}
    count = len(documents)
    scored: list[tuple[float, int]] = []
    for index, (name, description, title) in enumerate(documents):
        score = 0.0
        for term in terms:
            weight = math.log(1 + count / (1 + frequency[term]))
            score += weight * (3.0 * (term in name) + 1.0 * (term in description) + 1.5 * (term in title))
            if term not in name and any(word.startswith(term) for word in name):
                score += weight  # a prefix of a name word ("calend" finds "calendar")
        if score > 0:
            scored.append((score, index))
    scored.sort(key=lambda item: (-item[0], str(tools[item[1]].get("name", ""))))
    return [
        {
            "name": tools[index].get("name"),
            "description": str(tools[index].get("description") or "")[:_SUMMARY_CHARS],
            "connection": connection_titles[index],
            "score": round(score, 3),
        }
        for score, index in scored[:limit]
    ]
