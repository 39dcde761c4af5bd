"""Progress tokens on an upstream session that meshgate shares between callers.

Callers choose their own tokens (the SDK uses its request ids), so two callers' tokens can be equal.
Each request therefore goes upstream with a token of meshgate's, and each progress notification goes
back to its caller carrying the caller's own token.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from meshgate.jsonvalues import as_dict

Listener = Callable[[dict[str, Any]], None]


class ProgressRoutes:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._routes: dict[str, tuple[Any, Listener]] = {}

    def register(
        self, params: Mapping[str, Any] | None, listener: Listener | None
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        """Params with meshgate's token in place of the caller's, and the key to `release` afterwards."""
        meta = as_dict(as_dict(params).get("_meta"))
        token = meta.get("progressToken")
        if params is None or token is None:
            return params, None
        if listener is None:  # nobody would hear the progress: do not ask for it
            kept = {key: value for key, value in meta.items() if key != "progressToken"}
            return {**params, "_meta": kept} if kept else {k: v for k, v in params.items() if k != "_meta"}, None
        key = f"mg-{next(self._ids)}"
        self._routes[key] = (token, listener)
        return {**params, "_meta": {**meta, "progressToken": key}}, key

    def release(self, key: str | None) -> None:
        if key is not None:
            self._routes.pop(key, None)

    def deliver(self, message: dict[str, Any]) -> bool:
        """Hand a progress notification to its caller; False when no request of meshgate's owns it."""
        params = as_dict(message.get("params"))
        key = params.get("progressToken")
        route = self._routes.get(key) if isinstance(key, str) else None
        if route is None:
            return False
        token, listener = route
        listener({**message, "params": {**params, "progressToken": token}})
        return True
