"""What every dashboard page shares: the visitor in an organization, tools run as them, the layout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from meshgate.access import SELF, Principal
from meshgate.errors import MeshgateError, PermissionDenied
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web
from meshgate.identity.models import Organization, User
from meshgate.identity.service import OrganizationService, member_principal
from meshgate.mcp.invoke import refusal, run_tool
from meshgate.mcp.registry import ToolRegistry

Form = dict[str, list[str]]

# Pickers send a field per tool (a virtual MCP form: a checkbox, a name and a description each), so a
# few connections with many tools pass 200 fields; the 64 KiB body limit still bounds the work.
MAX_FORM_FIELDS = 4000

# (key, label, path under the organization, the tool whose permission shows the item)
NAV = (
    ("connections", "Connections", "/connections", "COLLECTION_CONNECTIONS_LIST"),
    ("virtual", "Virtual MCPs", "/virtual", "COLLECTION_VIRTUAL_MCP_LIST"),
    ("audit", "Audit log", "/audit", "MONITORING_LOGS_LIST"),
    ("events", "Events", "/events", "EVENT_LIST"),
    ("keys", "API keys", "/keys", "API_KEY_LIST"),
    ("apps", "Authorized apps", "/apps", "OAUTH_GRANT_LIST"),
    ("members", "Members", "/members", "ORGANIZATION_MEMBER_LIST"),
    ("roles", "Roles", "/roles", "ROLE_LIST"),
    ("storage", "Storage", "/storage", "LIST_OBJECTS"),
    ("connect", "Connect a client", "/connect", None),
    ("settings", "Settings", "/settings", "ORGANIZATION_SETTINGS_GET"),
)

# Messages shown after a redirect, by code: a query parameter never carries text into the page.
NOTICES = {
    "connection-created": "Connection created.",
    "connection-updated": "Connection saved.",
    "connection-deleted": "Connection deleted.",
    "virtual-created": "Virtual MCP created.",
    "virtual-updated": "Virtual MCP saved.",
    "virtual-deleted": "Virtual MCP deleted.",
    "key-updated": "API key permissions saved. They apply from its next request.",
    "key-revoked": "API key revoked. It stops working on its next request.",
    "app-revoked": "Access revoked. The app's tokens stop working on their next request; it must ask you again.",
    "member-updated": "Role changed.",
    "member-removed": "Member removed.",
    "invitation-withdrawn": "Invitation withdrawn. Its link no longer works.",
    "invitation-sent": "Invitation sent. The link is in the mail to that address only.",
    "invitation-resent": "A new invitation link was mailed. The previous link no longer works.",
    "joined": "Welcome! You joined this organization.",
    "role-saved": "Role saved.",
    "role-deleted": "Role deleted.",
    "settings-saved": "Settings saved.",
    "object-deleted": "Object deleted.",
    "storage-saved": "Bucket saved. New objects go there.",
    "storage-cleared": "Objects are kept in meshgate's data directory again.",
    "oauth-done": "Authorization finished.",
    "event-redelivered": "Dead deliveries are pending again: they are sent on the next round.",
    "nothing-dead": "No delivery of this event is dead: nothing to redeliver.",
    "event-cancelled": "Event cancelled. It will not be published.",
    "subscription-created": "Subscription created.",
    "subscription-deleted": "Subscription deleted.",
}


@dataclass(frozen=True, slots=True)
class Visit:
    """A logged-in person looking at one of their organizations."""

    user: User
    principal: Principal
    organization: Organization
    organizations: list[Organization]
    root: str  # URL path of this organization's dashboard

    def can(self, tool: str | None) -> bool:
        return tool is None or self.principal.allows(SELF, tool)


Page = Callable[[Request, Visit], Awaitable[Response]]
Action = Callable[[Request, Visit, Form], Awaitable[Response]]
ShowingPage = Callable[[dict[str, str] | None], Awaitable[Response]]


class Dashboard:
    """Resolves visits, runs management tools as the visitor, renders pages in the shared layout."""

    def __init__(self, web: Web, registry: ToolRegistry) -> None:
        self.web = web
        self.runtime = web.runtime
        self.registry = registry
        self.base = web.base

    async def visit(self, request: Request) -> Visit | Response:
        user = await self.web.user(request)
        if user is None:
            return RedirectResponse(f"{self.base}/login?next={self.base}{request.url.path}", status_code=303)
        slug = str(request.path_params.get("org", ""))
        try:
            async with self.runtime.db.transaction() as session:
                principal = await member_principal(session, user.id, slug)
                organizations = await OrganizationService(session).list_for_user(user.id)
        except MeshgateError as error:
            return self.web.page(request, "message.html", error.http_status, heading="Not found", message=error.message)
        current = next(org for org in organizations if org.id == principal.organization_id)
        return Visit(user, principal, current, organizations, f"{self.base}/app/{principal.organization_slug}")

    async def tool(self, visit: Visit, name: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run a management tool as the visitor: the same permission check and validation as `/mcp`."""
        spec = self.registry.get(name)
        if spec is None:
            raise refusal(name)
        return await run_tool(self.runtime, visit.principal, spec, arguments)

    def page(self, request: Request, visit: Visit, template: str, status: int = 200, **context: Any) -> Response:
        nav = [(key, label, visit.root + path) for key, label, path, tool in NAV if visit.can(tool)]
        notice = NOTICES.get(request.query_params.get("notice", ""))
        return self.web.page(
            request,
            template,
            status,
            visit=visit,
            nav=nav,
            notice=notice,
            public_url=self.runtime.settings.public_url,
            **context,
        )

    def failed(self, request: Request, visit: Visit, error: MeshgateError) -> Response:
        heading = "Not allowed" if isinstance(error, PermissionDenied) else "Something went wrong"
        return self.page(
            request, visit, "dashboard/problem.html", error.http_status, heading=heading, message=error.message
        )

    def view(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A GET page: needs a visit; a refused or failed tool shows a readable problem page."""

        async def endpoint(request: Request) -> Response:
            visit = await self.visit(request)
            if isinstance(visit, Response):
                return visit
            try:
                return await handler(request, visit)
            except MeshgateError as error:
                return self.failed(request, visit, error)

        return endpoint

    def action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """A form POST: needs a visit and a genuine CSRF token before anything runs."""

        async def endpoint(request: Request) -> Response:
            visit = await self.visit(request)
            if isinstance(visit, Response):
                return visit
            try:
                form = await read_form(request, max_fields=MAX_FORM_FIELDS)
                if not self.web.form_is_genuine(request, form):
                    return self.web.refused(request)
                return await handler(request, visit, form)
            except MeshgateError as error:
                return self.failed(request, visit, error)

        return endpoint

    def back(self, visit: Visit, path: str, notice: str | None = None) -> Response:
        """Post/redirect/get: to a page of this organization, with a notice code."""
        suffix = "" if notice is None else ("&" if "?" in path else "?") + f"notice={notice}"
        return RedirectResponse(visit.root + path + suffix, status_code=303)

    def back_showing(self, visit: Visit, path: str, shown: Mapping[str, str]) -> Response | None:
        """Post/redirect/get with a secret that the page at `path` shows once (see `showing_once`); None when it
        does not fit a cookie, and the caller shows it in its own answer instead."""
        response = RedirectResponse(visit.root + path, status_code=303, headers={"Cache-Control": "no-store"})
        if not self.web.shown_once.hand_over(response, visit.root + path, _binding(visit, path), shown):
            return None
        return response

    async def showing_once(self, request: Request, visit: Visit, path: str, render: ShowingPage) -> Response:
        """The page at `path`, given what `back_showing` carried to it (None after that), which its answer clears."""
        once = self.web.shown_once
        response = await render(once.take(request, _binding(visit, path)))
        once.clear(request, response, visit.root + path)
        return response


def _binding(visit: Visit, path: str) -> str:
    """What a shown-once secret is sealed for: this visitor, in this organization, on this page."""
    return f"{visit.user.id} {visit.organization.id} {path}"


def field(form: Form, name: str) -> str:
    """One form value, trimmed; missing is empty."""
    return (single(form, name) or "").strip()


def optional(form: Form, name: str) -> str | None:
    return field(form, name) or None
