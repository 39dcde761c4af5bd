"""Events: recent events with filters, one event with its deliveries (redeliver, cancel), and a live view.

Every read and change goes through the EVENT_* tools as the visitor. The live view is the watch stream
(`WatchHub`) opened with the visitor's browser session instead of a bearer credential: an `EventSource`
cannot send one, and the same permission (`self:EVENT_LIST`) applies.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from meshgate.dashboard._core import Dashboard, Form, Visit, optional
from meshgate.errors import InvalidInput
from meshgate.events.models import DELIVERY_STATES
from meshgate.events.tools import EVENT_STATES
from meshgate.events.watch import WatchHub
from meshgate.http.pages import SECURITY_HEADERS
from meshgate.jsonvalues import as_dict, as_list

PAGE_SIZE = 50
LIVE_POLICY = "; connect-src 'self'"
FILTERS = ("type", "source", "status", "delivery")
# The tabs of the event pages: (key, label, path under the organization, the tool that shows it)
TABS = (
    ("events", "Events", "/events", "EVENT_LIST"),
    ("subscriptions", "Subscriptions", "/events/subscriptions", "EVENT_SUBSCRIPTION_LIST"),
    ("automations", "Automations", "/events/automations", "AUTOMATION_LIST"),
)


def tabs(visit: Visit) -> list[tuple[str, str, str]]:
    return [(key, label, visit.root + path) for key, label, path, tool in TABS if visit.can(tool)]


class EventPages:
    def __init__(self, dashboard: Dashboard, watch: WatchHub) -> None:
        self._d = dashboard
        self._watch = watch

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/events", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/events/live", self.live, methods=["GET"]),
            Route("/app/{org}/events/{id}", d.view(self.detail), methods=["GET"]),
            Route("/app/{org}/events/{id}/redeliver", d.action(self.redeliver), methods=["POST"]),
            Route("/app/{org}/events/{id}/cancel", d.action(self.cancel), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        query = request.query_params
        chosen = {name: query.get(name, "").strip() for name in FILTERS}
        page = int(query["page"]) if query.get("page", "").isdigit() and int(query["page"]) > 0 else 1
        arguments = _arguments(chosen)
        context: dict[str, Any] = {
            "section": "events",
            "tabs": tabs(visit),
            "chosen": chosen,
            "event_states": EVENT_STATES,
            "delivery_states": DELIVERY_STATES,
        }
        try:
            listed = await self._d.tool(
                visit, "EVENT_LIST", {**arguments, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}
            )
        except InvalidInput as error:  # a filter a person typed: say so next to the filters
            return self._d.page(
                request,
                visit,
                "dashboard/events.html",
                400,
                items=[],
                total=0,
                page=1,
                pages=1,
                query_without_page="",
                filter_error=error.message,
                **context,
            )
        total = int(listed["totalCount"])
        response = self._d.page(
            request,
            visit,
            "dashboard/events.html",
            items=[as_dict(item) for item in as_list(listed["items"])],
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            query_without_page=urlencode({k: v for k, v in chosen.items() if v}),
            # The live view shows only what the list would: new events, unfiltered, on the first page.
            live=page == 1 and not any(chosen.values()),
            **context,
        )
        # The pages' policy forbids every connection; this page's script opens the live stream, same origin only.
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"] + LIVE_POLICY
        return response

    async def detail(self, request: Request, visit: Visit) -> Response:
        event = as_dict(await self._d.tool(visit, "EVENT_GET", {"eventId": str(request.path_params["id"])}))
        deliveries = [as_dict(item) for item in as_list(event.get("deliveries"))]
        return self._d.page(
            request,
            visit,
            "dashboard/event.html",
            section="events",
            tabs=tabs(visit),
            event=event,
            data=None if "data" not in event else json.dumps(event["data"], indent=2, ensure_ascii=False),
            deliveries=deliveries,
            subscribers=await self._subscribers(visit),
            dead=any(item["status"] == "dead" for item in deliveries),
        )

    async def redeliver(self, request: Request, visit: Visit, form: Form) -> Response:
        event_id = str(request.path_params["id"])
        arguments: dict[str, Any] = {"eventId": event_id}
        if subscription := optional(form, "subscription"):
            arguments["subscriptionId"] = subscription
        again = await self._d.tool(visit, "EVENT_REDELIVER", arguments)
        return self._d.back(
            visit, f"/events/{event_id}", "event-redelivered" if again["redelivered"] else "nothing-dead"
        )

    async def cancel(self, request: Request, visit: Visit, _form: Form) -> Response:
        event_id = str(request.path_params["id"])
        await self._d.tool(visit, "EVENT_CANCEL", {"eventId": event_id})
        return self._d.back(visit, f"/events/{event_id}", "event-cancelled")

    async def live(self, request: Request) -> Response:
        """The watch stream of the visitor's organization, as server-sent events (for the events page's script)."""
        visit = await self._d.visit(request)
        if isinstance(visit, Response):
            return visit
        return _Stream(self._watch, visit)

    async def _subscribers(self, visit: Visit) -> dict[str, str]:
        """Subscription id → who receives: the connection's title, or "webhook to host" (never its secret)."""
        connections: dict[str, str] = {}
        if visit.can("COLLECTION_CONNECTIONS_LIST"):
            listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
            connections = {str(c["id"]): str(c["title"]) for c in map(as_dict, as_list(listed["items"]))}
        found: dict[str, str] = {}
        if visit.can("EVENT_SUBSCRIPTION_LIST"):
            listed = await self._d.tool(visit, "EVENT_SUBSCRIPTION_LIST")
            for item in map(as_dict, as_list(listed["items"])):
                found[str(item["id"])] = subscriber_label(item, connections)
        return found


def subscriber_label(subscription: dict[str, Any], connections: dict[str, str]) -> str:
    if subscription.get("url"):
        return f"webhook to {urlsplit(str(subscription['url'])).hostname}"
    connection = str(subscription.get("connectionId") or "")
    return connections.get(connection, connection)


def _arguments(chosen: dict[str, str]) -> dict[str, Any]:
    """EVENT_LIST arguments from the filter form; a type without `*` that ends in `.` reads as a prefix."""
    arguments: dict[str, Any] = {}
    if chosen["type"]:
        arguments["type"] = chosen["type"] + "*" if chosen["type"].endswith(".") else chosen["type"]
    if chosen["source"]:
        arguments["source"] = chosen["source"]
    if chosen["status"]:
        arguments["status"] = chosen["status"]
    if chosen["delivery"]:
        arguments["deliveryStatus"] = chosen["delivery"]
    return arguments


class _Stream(Response):
    """Hands the request to the watch hub as the visitor (the hub checks `self:EVENT_LIST` itself)."""

    def __init__(self, watch: WatchHub, visit: Visit) -> None:
        super().__init__()
        self._watch = watch
        self._visit = visit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._watch.serve(scope, receive, send, self._visit.principal)
