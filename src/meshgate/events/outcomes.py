"""What a delivery attempt comes to: the subscriber's ON_EVENTS answer or the failure of the call, read as the
ON_EVENTS binding of the reference system defines it.

`{success: true}` delivered; `{success: false, error}` failed for good (a dead letter); `{retryAfter: ms}` again
later, not counted as an attempt; `results` per event id, with the batch fields for the events it does not name.
A call that failed (unreachable, timed out, `isError`) is retried; a refusal that cannot heal (no such tool,
no permission, not found) is a dead letter at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson

from meshgate.errors import MeshgateError, NotFound, PermissionDenied, UpstreamRpcError
from meshgate.events.models import DEAD, DELIVERED, PENDING
from meshgate.jsonvalues import as_dict

_PERMANENT_RPC = (-32601, -32602)  # method or tool not found, invalid params: retrying changes nothing


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # delivered | dead | pending
    error: str | None = None
    retry_in_s: float | None = None  # pending: when, if the subscriber said (else the backoff decides)
    counts: bool = True  # whether this retry counts as a failed attempt


def failed(error: MeshgateError) -> Outcome:
    permanent = isinstance(error, PermissionDenied | NotFound) or (
        isinstance(error, UpstreamRpcError) and error.rpc.get("code") in _PERMANENT_RPC
    )
    return Outcome(DEAD if permanent else PENDING, error.message)


def decided(answer: Mapping[str, Any], event_id: str, max_retry_s: float) -> Outcome:
    """One event's outcome from a (parsed) ON_EVENTS answer."""
    own = as_dict(as_dict(answer.get("results")).get(event_id))
    for found in (own, answer):
        if found.get("success") is True:
            return Outcome(DELIVERED)
        if found.get("success") is False:
            return Outcome(DEAD, str(found.get("error") or "the subscriber reported a failure"))
        retry = found.get("retryAfter")
        if isinstance(retry, int | float) and not isinstance(retry, bool) and retry > 0:
            return Outcome(PENDING, None, min(float(retry) / 1000, max_retry_s), counts=False)
    if answer.get("isError") is True:
        return Outcome(PENDING, "ON_EVENTS answered with an error: " + str(answer.get("error", ""))[:200])
    return Outcome(PENDING, "ON_EVENTS answered neither success nor retryAfter")


def answer_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """ON_EVENTS's answer: its structured content, else the JSON in its text, plus `isError`."""
    found = as_dict(result.get("structuredContent"))
    if not found:
        for item in cast("list[Any]", result.get("content") or []):
            text = as_dict(item).get("text")
            if isinstance(text, str):
                with contextlib.suppress(orjson.JSONDecodeError):
                    found = as_dict(orjson.loads(text))
                if not found and result.get("isError"):
                    found = {"error": text}
                break
    if result.get("isError") is True:
        found = {k: v for k, v in found.items() if k != "success"} | {"isError": True}
    return found
