"""A hand-written STDIO MCP server that floods its client with server-to-client requests (security review 15).

Run: python -m support.flood_upstream   (PYTHONPATH must include tests/)
Tools: `flood {count}` sends `count` roots/list requests at once, reports each answer it gets as progress
(progress = answers so far), and when all are answered returns `results=R errors=E`; `big {bytes}` sends one
roots/list request padded to that size and returns `result` or `error` for its answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _tools() -> list[dict[str, Any]]:
    schema = {"type": "object"}
    return [{"name": "flood", "inputSchema": schema}, {"name": "big", "inputSchema": schema}]


def main() -> None:
    call: dict[str, Any] | None = None  # the tools/call being served: its id, kind, expected answers, counts
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        if method == "initialize":
            result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}}}
            _write({"jsonrpc": "2.0", "id": message["id"], "result": {**result, "serverInfo": {"name": "flood"}}})
        elif method == "tools/list":
            _write({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": _tools()}})
        elif method == "ping":
            _write({"jsonrpc": "2.0", "id": message["id"], "result": {}})
        elif method == "tools/call":
            params = message["params"]
            arguments = params.get("arguments") or {}
            token = (params.get("_meta") or {}).get("progressToken")
            if params["name"] == "flood":
                count = int(arguments.get("count", 1000))
                call = {"id": message["id"], "expected": count, "results": 0, "errors": 0, "token": token}
                for n in range(count):
                    _write({"jsonrpc": "2.0", "id": f"flood-{n}", "method": "roots/list"})
            else:
                call = {"id": message["id"], "expected": 1, "results": 0, "errors": 0, "token": None}
                padding = "x" * int(arguments.get("bytes", 1))
                _write({"jsonrpc": "2.0", "id": "big-0", "method": "roots/list", "params": {"_meta": {"pad": padding}}})
        elif "method" not in message and call is not None and str(message.get("id", "")).startswith(("flood-", "big-")):
            call["results" if "result" in message else "errors"] += 1
            answered = call["results"] + call["errors"]
            if call["token"] is not None:
                progress = {"progressToken": call["token"], "progress": answered, "total": call["expected"]}
                _write({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
            if answered == call["expected"]:
                text = f"results={call['results']} errors={call['errors']}"
                _write({"jsonrpc": "2.0", "id": call["id"], "result": {"content": [{"type": "text", "text": text}]}})
                call = None


if __name__ == "__main__":
    main()
