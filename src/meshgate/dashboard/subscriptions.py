"""Who receives events: subscriptions per connection and webhooks (create, delete; a webhook's signing secret is
shown once), and automations with their triggers and recent runs."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.dashboard.events import subscriber_label, tabs
from meshgate.errors import InvalidInput, MeshgateError
from meshgate.jsonvalues import as_dict, as_list

RUNS_SHOWN = 20


class SubscriptionPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/events/subscriptions", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/events/subscriptions", d.action(self.create), methods=["POST"]),
            Route("/app/{org}/events/subscriptions/{id}/delete", d.action(self.delete), methods=["POST"]),
            Route("/app/{org}/events/automations", d.view(self.automations), methods=["GET"]),
            Route("/app/{org}/events/automations/{id}", d.view(self.automation), methods=["GET"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        """The subscriptions, and once, right after a webhook is made, its signing secret."""
        return await self._d.showing_once(
            request, visit, "/events/subscriptions", lambda created: self._page(request, visit, created=created)
        )

    async def create(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments: dict[str, Any] = {"eventType": field(form, "event_type")}
        if publisher := optional(form, "publisher"):
            arguments["publisher"] = publisher
        if field(form, "receiver") == "webhook":
            arguments["url"] = field(form, "url")
        else:
            arguments["connectionId"] = field(form, "connection")
        try:
            if filter_text := optional(form, "filter"):
                arguments["filter"] = _json(filter_text)
            created = as_dict(await self._d.tool(visit, "EVENT_SUBSCRIBE", arguments))
        except MeshgateError as error:
            return await self._page(
                request, visit, error.http_status, error=error.message, values=dict(form_values(form))
            )
        if created.get("secret"):
            shown = {"url": str(created["url"]), "secret": str(created["secret"])}
            return self._d.back_showing(visit, "/events/subscriptions", shown) or await self._page(
                request, visit, created=shown
            )
        return self._d.back(visit, "/events/subscriptions", "subscription-created")

    async def delete(self, request: Request, visit: Visit, _form: Form) -> Response:
        await self._d.tool(visit, "EVENT_UNSUBSCRIBE", {"subscriptionId": str(request.path_params["id"])})
        return self._d.back(visit, "/events/subscriptions", "subscription-deleted")

    async def _page(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        listed = await self._d.tool(visit, "EVENT_SUBSCRIPTION_LIST")
        connections = await self._connections(visit)
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in map(as_dict, as_list(listed["items"])):
            item["receiver"] = subscriber_label(item, connections)
            groups.setdefault("Webhooks" if item.get("url") else item["receiver"], []).append(item)
        return self._d.page(
            request,
            visit,
            "dashboard/subscriptions.html",
            status,
            section="events",
            tabs=tabs(visit),
            groups=sorted(groups.items(), key=lambda group: (group[0] == "Webhooks", group[0].lower())),
            connections=connections,
            values=context.pop("values", {"receiver": "connection"}),
            **context,
        )

    async def automations(self, request: Request, visit: Visit) -> Response:
        listed = await self._d.tool(visit, "AUTOMATION_LIST", {"limit": 1000})
        return self._d.page(
            request,
            visit,
            "dashboard/automations.html",
            section="events",
            tabs=tabs(visit),
            items=[as_dict(item) for item in as_list(listed["items"])],
            connections=await self._connections(visit),
        )

    async def automation(self, request: Request, visit: Visit) -> Response:
        found = as_dict(
            await self._d.tool(visit, "AUTOMATION_GET", {"id": str(request.path_params["id"]), "runsLimit": RUNS_SHOWN})
        )
        return self._d.page(
            request,
            visit,
            "dashboard/automation.html",
            section="events",
            tabs=tabs(visit),
            item=found,
            arguments=json.dumps(found.get("arguments"), indent=2, ensure_ascii=False),
            connections=await self._connections(visit),
        )

    async def _connections(self, visit: Visit) -> dict[str, str]:
        if not visit.can("COLLECTION_CONNECTIONS_LIST"):
            return {}
        listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
        return {str(c["id"]): str(c["title"]) for c in map(as_dict, as_list(listed["items"]))}


def form_values(form: Form) -> dict[str, str]:
    """What the person typed, to show the form again after a refusal."""
    return {name: field(form, name) for name in ("receiver", "connection", "url", "event_type", "publisher", "filter")}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f'filter is not JSON ({exc}); e.g. {{"prefix": {{"subject": "order-"}}}}') from exc
