"""Requests an upstream sends back during a call (sampling, elicitation, roots), carried to the client.

Shared by virtual MCPs and the proxy's bridged path (SSE and STDIO upstreams), where meshgate holds
the upstream side of the call.

Handshake-era clients get the request on the call's SSE answer under an id of meshgate's (`mg-…`) and
POST their response to the same endpoint; `2026-07-28` clients get an `input_required` result naming
the requests and a `requestState`, and retry the call with `inputResponses`. Either way the upstream's
call stays open in this process meanwhile, and its request is answered with what the client said.
Only the caller who made the call can answer (the credential is checked).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Send

from meshgate.access import Principal
from meshgate.errors import MeshgateError
from meshgate.http.sse import disconnected
from meshgate.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, Envelope, rpc_error
from meshgate.jsonvalues import as_dict

INTERACTIVE = frozenset({"tools/call", "prompts/get", "resources/read"})
STATE_PREFIX = "mgvs1."  # meshgate's requestState; any other is an upstream's own and goes to it
Work = asyncio.Future[tuple[dict[str, Any], dict[str, str], Any]]


@dataclass(eq=False)
class CallChannel:
    """What flows from the upstream to the client while one call runs."""

    caller: str
    stateless: bool
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue[dict[str, Any]])
    questions: asyncio.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=asyncio.Queue[tuple[str, dict[str, Any]]]
    )
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(
        default_factory=dict[str, asyncio.Future[dict[str, Any]]]
    )
    keys: itertools.count[int] = field(default_factory=itertools.count)

    def progress(self, message: dict[str, Any]) -> None:
        self.events.put_nowait(message)


@dataclass(eq=False)
class Suspended:
    """A call waiting for a `2026-07-28` client to retry with its input responses."""

    work: Work
    channel: CallChannel
    context: Any  # the endpoint's own record of the call (for its audit entry)
    expiry: asyncio.TimerHandle | None = None


class Interactions:
    """Open server-to-client requests and suspended calls of this process."""

    def __init__(self, timeout_s: float = 300.0) -> None:
        self._timeout = timeout_s
        self._replies: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._suspended: dict[str, Suspended] = {}

    async def ask(self, channel: CallChannel, request: dict[str, Any]) -> dict[str, Any]:
        """Put an upstream's request to the client; returns the response message for the upstream."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        outgoing = {"method": request.get("method"), "params": request.get("params", {})}
        if channel.stateless:
            key = f"q{next(channel.keys)}"
            channel.waiting[key] = future
            channel.questions.put_nowait((key, outgoing))
        else:
            key = "mg-" + secrets.token_urlsafe(16)
            self._replies[key] = (channel.caller, future)
            channel.events.put_nowait({"jsonrpc": "2.0", "id": key, **outgoing})
        try:
            async with asyncio.timeout(self._timeout):
                return await future
        finally:
            self._replies.pop(key, None)
            channel.waiting.pop(key, None)

    def reply(self, caller: str, message: dict[str, Any]) -> bool:
        """A handshake-era client's response to a request it got from meshgate; False if none is open."""
        waiting = self._replies.get(str(message.get("id")))
        if waiting is None or waiting[0] != caller or waiting[1].done():
            return False
        answer = {key: message[key] for key in ("result", "error") if key in message}
        waiting[1].set_result(answer or {"error": {"code": INVALID_REQUEST, "message": "empty response"}})
        return True

    def suspend(self, suspended: Suspended) -> str:
        """Keep a call open for the client's retry; returns the `requestState` naming it."""
        state = STATE_PREFIX + secrets.token_urlsafe(24)
        self._suspended[state] = suspended
        loop = asyncio.get_running_loop()
        suspended.expiry = loop.call_later(self._timeout, self._expire, state)
        return state

    def resume(self, caller: str, state: str, responses: dict[str, Any]) -> Suspended | None:
        """The suspended call a retry names, with the client's responses delivered; None if unknown."""
        suspended = self._suspended.get(state)
        if suspended is None or suspended.channel.caller != caller:
            return None
        del self._suspended[state]
        if suspended.expiry is not None:
            suspended.expiry.cancel()
        for key, response in responses.items():
            future = suspended.channel.waiting.get(key)
            if future is not None and not future.done():
                future.set_result({"result": as_dict(response)})
        return suspended

    def _expire(self, state: str) -> None:
        suspended = self._suspended.pop(state, None)
        if suspended is not None:
            suspended.work.cancel()

    def close(self) -> None:
        for state in list(self._suspended):
            self._expire(state)


@dataclass(slots=True)
class Outcome:
    """How a call ended for this HTTP request: an answer, questions for the client, streamed or not."""

    streaming: bool
    answer: tuple[dict[str, Any], dict[str, str], MeshgateError | None] = ({}, {}, None)
    questions: dict[str, Any] | None = None


async def drive(  # noqa: PLR0917
    receive: Receive, send: Send, work: Work, channel: CallChannel, request_id: str, may_stream: bool
) -> Outcome | None:
    """Relay what the upstream sends during the call (progress, its requests) as SSE events, until the
    answer, questions for a `2026-07-28` client (the call stays open), or the client's going away (None)."""
    gone = asyncio.ensure_future(disconnected(receive))
    streaming = False

    async def relay(message: dict[str, Any]) -> None:
        nonlocal streaming
        if not may_stream:
            return
        if not streaming:
            headers = [(b"content-type", b"text/event-stream"), (b"x-request-id", request_id.encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            streaming = True
        await send({"type": "http.response.body", "body": _event(orjson.dumps(message)), "more_body": True})

    try:
        while not work.done():
            event = asyncio.ensure_future(channel.events.get())
            question = asyncio.ensure_future(channel.questions.get())
            await asyncio.wait({work, gone, event, question}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (event, question):
                if not waiting.done():
                    waiting.cancel()
            if event.done() and not event.cancelled():
                await relay(event.result())
            if question.done() and not question.cancelled():
                asked = dict([question.result()])
                while not channel.questions.empty():
                    key, request = channel.questions.get_nowait()
                    asked[key] = request
                return Outcome(streaming, questions=asked)
            if gone.done() and not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                return None
        while not channel.events.empty():
            await relay(channel.events.get_nowait())
    finally:
        gone.cancel()
    if work.cancelled():  # the client cancelled the call: no answer, but the HTTP request is ended
        if not streaming:
            await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return None
    return Outcome(streaming, answer=work.result())


InFlightKey = tuple[str, str, bytes]


def in_flight_key(principal: Principal, session: str | None, message_id: Any) -> InFlightKey | None:
    """How a `notifications/cancelled` finds the call it names: the caller, its session and the request id
    (a session id alone is whatever the client sends, so another caller who learnt it could cancel)."""
    return None if session is None else (caller_of(principal), session, orjson.dumps(message_id))


def caller_of(principal: Principal) -> str:
    """Who may answer or resume a call: the credential (API key or OAuth grant), else the user."""
    return principal.caller


def expired(envelope: Envelope) -> dict[str, Any]:
    """The answer to a retry or response naming an interaction this process does not hold."""
    text = "this interaction ended or was started on another meshgate process: make the request again"
    if envelope.method == "tools/call":
        result = {"resultType": "complete", "content": [{"type": "text", "text": text}], "isError": True}
        return {"jsonrpc": "2.0", "id": envelope.id, "result": result}
    return rpc_error(envelope.id, INVALID_PARAMS, text)


def _event(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"
