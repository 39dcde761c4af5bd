"""The test upstream's server-to-client traffic: what it asks the client mid-call and what it announces.

Tools `ask` (form elicitation), `ask_url` (URL-mode elicitation, then `notifications/elicitation/complete`),
`sample` (sampling) and `roots` (the client's roots) ask the client: a request on the call's stream in the
handshake era, `input_required` in the 2026-07-28 era. `touch {uri}` announces `notifications/resources/updated`
to handshake-era sessions that subscribed to it (`resources/subscribe`) and to `subscriptions/listen` streams
(2026-07-28) whose filter names it. `heard` reports the client notifications the server received
(`notifications/roots/list_changed`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated

Ctx = ServerRequestContext[Any, Any]

NAME_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CONFIRM_URL = "https://confirm.example/consent?ticket=42"
ELICITATION_ID = "confirm-42"

ASKING_TOOLS = [
    types.Tool(
        name="ask", description="Ask the user's name (elicitation), then greet", input_schema={"type": "object"}
    ),
    types.Tool(
        name="ask_url",
        description="Send the user to a URL (URL-mode elicitation), then report the answer",
        input_schema={"type": "object"},
    ),
    types.Tool(
        name="sample", description="Ask the client's model (sampling), then answer", input_schema={"type": "object"}
    ),
    types.Tool(name="roots", description="List the client's roots", input_schema={"type": "object"}),
    types.Tool(
        name="touch",
        description="Announce that a resource changed",
        input_schema={"type": "object", "properties": {"uri": {"type": "string"}}},
    ),
    types.Tool(
        name="heard", description="Notifications this server heard from clients", input_schema={"type": "object"}
    ),
]
ASKING = frozenset({"ask", "ask_url", "sample", "roots"})

BUS = InMemorySubscriptionBus()
LISTEN = ListenHandler(BUS)
SUBSCRIBERS: defaultdict[str, list[Any]] = defaultdict(list)  # uri -> handshake-era sessions subscribed to it
HEARD: list[str] = []


def _question(name: str) -> Any:
    if name == "ask":
        return types.ElicitRequest(
            params=types.ElicitRequestFormParams(message="What is your name?", requested_schema=NAME_SCHEMA)
        )
    if name == "ask_url":
        return types.ElicitRequest(
            params=types.ElicitRequestURLParams(
                message="Confirm in your browser", url=CONFIRM_URL, elicitation_id=ELICITATION_ID
            )
        )
    if name == "roots":
        return types.ListRootsRequest()
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text="Say hi"))], max_tokens=20
        )
    )


async def _ask_handshake(ctx: Ctx, name: str) -> Any:
    session, related = ctx.session, ctx.request_id
    if name == "ask":
        return await session.elicit_form("What is your name?", NAME_SCHEMA, related_request_id=related)
    if name == "ask_url":
        answer = await session.elicit_url("Confirm in your browser", CONFIRM_URL, ELICITATION_ID, related)
        await session.send_elicit_complete(ELICITATION_ID, related)
        return answer
    if name == "roots":
        return await session.list_roots()
    message = types.SamplingMessage(role="user", content=types.TextContent(text="Say hi"))
    return await session.create_message([message], max_tokens=20, related_request_id=related)


def _reply(name: str, answer: dict[str, Any]) -> types.CallToolResult:
    if name == "roots":
        text = "roots: " + ", ".join(str(root["uri"]) for root in answer.get("roots", []))
    elif name == "sample":
        text = f"the model said: {answer['content']['text']}"
    elif answer.get("action") != "accept":
        text = f"no answer ({answer.get('action')})"
    elif name == "ask_url":
        text = "confirmed in the browser"
    else:
        text = f"Hello, {answer['content']['name']}!"
    return types.CallToolResult(content=[types.TextContent(text=text)])


async def asking_tool(ctx: Ctx, params: types.CallToolRequestParams) -> Any:
    """`ask`, `ask_url`, `sample`, `roots`: a request to the client mid-call, or input_required (2026-07-28)."""
    if ctx.protocol_version >= "2026":
        responses: dict[str, Any] = dict(params.input_responses or {})
        if "q" not in responses:
            return types.InputRequiredResult(input_requests={"q": _question(params.name)}, request_state="round-1")
        answer = responses["q"]
    else:
        answer = await _ask_handshake(ctx, params.name)
    answer = answer if isinstance(answer, dict) else answer.model_dump(by_alias=True, exclude_none=True)
    return _reply(params.name, answer)


async def touch(args: dict[str, Any]) -> types.CallToolResult:
    uri = str(args.get("uri", "memo://one"))
    sessions = SUBSCRIBERS.get(uri, [])
    for session in list(sessions):
        try:
            await session.send_resource_updated(uri)
        except Exception:  # noqa: BLE001  (a subscriber whose session has ended: forget it)
            sessions.remove(session)
    await BUS.publish(ResourceUpdated(uri=uri))
    return types.CallToolResult(content=[types.TextContent(text=f"touched {uri}")])


def heard() -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=",".join(HEARD))])


async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIBERS[str(params.uri)].append(ctx.session)
    return types.EmptyResult()


async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    sessions = SUBSCRIBERS.get(str(params.uri), [])
    if ctx.session in sessions:
        sessions.remove(ctx.session)
    return types.EmptyResult()


async def roots_changed(_ctx: Ctx, _params: types.NotificationParams | None) -> None:
    HEARD.append("roots/list_changed")
