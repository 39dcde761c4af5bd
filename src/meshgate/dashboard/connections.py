"""Connections: list, create per type, edit, delete, test, OAuth connect, the tool browser with "try it", and
what else the server offers (resources, resource templates, prompts; their pages are in `resources.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.connections.service import ConnectionInUse
from meshgate.dashboard._calls import ToolCaller
from meshgate.dashboard._contents import Budget, content_parts
from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.dashboard._reads import UpstreamReader
from meshgate.dashboard._schema import RAW, arguments_from, fields_of, takes_no_arguments
from meshgate.errors import InvalidInput, MeshgateError
from meshgate.jsonvalues import as_dict, as_list

TYPES = ("HTTP", "SSE", "STDIO")
# Form fields holding a new value for one stored header / environment variable: the prefix, then its name.
HEADER_VALUE = "header_value:"
ENV_VALUE = "env_value:"
MAX_LATENCY_LOOKUPS = 50  # one audit query per connection; above this the column stays empty


class ConnectionPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard
        self._caller = ToolCaller(dashboard.runtime.calls, dashboard.runtime.limiter)
        self._reader = UpstreamReader(dashboard.runtime.calls, dashboard.runtime.limiter)

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/connections", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/connections", d.action(self.create), methods=["POST"]),
            Route("/app/{org}/connections/new", d.view(self.new), methods=["GET"]),
            Route("/app/{org}/connections/{id}", d.view(self.detail), methods=["GET"]),
            Route("/app/{org}/connections/{id}/edit", d.view(self.edit), methods=["GET"]),
            Route("/app/{org}/connections/{id}/edit", d.action(self.update), methods=["POST"]),
            Route("/app/{org}/connections/{id}/delete", d.action(self.delete), methods=["POST"]),
            Route("/app/{org}/connections/{id}/test", d.action(self.test), methods=["POST"]),
            Route("/app/{org}/connections/{id}/oauth", d.action(self.oauth), methods=["POST"]),
            # `path`: a tool name may hold `/` (printable names are kept, security review 18)
            Route("/app/{org}/connections/{id}/tools/{tool:path}", d.view(self.tool), methods=["GET"]),
            Route("/app/{org}/connections/{id}/tools/{tool:path}", d.action(self.try_tool), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
        connections = [as_dict(item) for item in as_list(listed["items"])]
        latency: dict[str, float | None] = {}
        if visit.can("MONITORING_STATS") and len(connections) <= MAX_LATENCY_LOOKUPS:
            since = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
            for item in connections:
                stats = await self._d.tool(visit, "MONITORING_STATS", {"connectionId": item["id"], "startDate": since})
                latency[item["id"]] = as_dict(stats.get("latencyMs")).get("p50")
        return self._d.page(
            request,
            visit,
            "dashboard/connections.html",
            section="connections",
            connections=connections,
            latency=latency,
        )

    async def new(self, request: Request, visit: Visit) -> Response:
        kind = request.query_params.get("type", "HTTP")
        return self._form(request, visit, kind if kind in TYPES else "HTTP", connection=None, form={}, error=None)

    async def create(self, request: Request, visit: Visit, form: Form) -> Response:
        kind = field(form, "connection_type")
        try:
            data = connection_data(form, kind, current=None)
            created = await self._d.tool(visit, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
        except MeshgateError as error:
            return self._form(request, visit, kind, connection=None, form=form, error=error)
        return self._d.back(visit, f"/connections/{created['id']}", "connection-created")

    async def detail(self, request: Request, visit: Visit, **result: Any) -> Response:
        connection = await self._get(visit, str(request.path_params["id"]))
        # Asked live as the visitor (their grants decide), within one call timeout; a server that does not
        # answer leaves the tools, which the registry keeps, and a note.
        timeout_s = float(connection.get("call_timeout_ms") or 30_000) / 1000
        offers = await self._reader.offers(visit.principal, connection["id"], timeout_s)
        return self._d.page(
            request,
            visit,
            "dashboard/connection.html",
            result.pop("status", 200),
            section="connections",
            connection=connection,
            tools=as_list(connection.get("tools")),
            offers=offers,
            **result,
        )

    async def edit(self, request: Request, visit: Visit) -> Response:
        connection = await self._get(visit, str(request.path_params["id"]))
        return self._form(request, visit, connection["connection_type"], connection=connection, form={}, error=None)

    async def update(self, request: Request, visit: Visit, form: Form) -> Response:
        connection = await self._get(visit, str(request.path_params["id"]))
        try:
            data = connection_data(form, connection["connection_type"], current=connection)
            if "connection_url" in data and data["connection_url"] == connection["connection_url"]:
                del data["connection_url"]  # unchanged: no need to contact the server again
            await self._d.tool(visit, "COLLECTION_CONNECTIONS_UPDATE", {"id": connection["id"], "data": data})
        except MeshgateError as error:
            return self._form(
                request, visit, connection["connection_type"], connection=connection, form=form, error=error
            )
        return self._d.back(visit, f"/connections/{connection['id']}", "connection-updated")

    async def delete(self, request: Request, visit: Visit, _form: Form) -> Response:
        try:
            await self._d.tool(visit, "COLLECTION_CONNECTIONS_DELETE", {"id": str(request.path_params["id"])})
        except ConnectionInUse as error:
            links = [(f"{visit.root}/virtual/{virtual_id}", title) for virtual_id, title in error.users]
            return self._d.page(
                request,
                visit,
                "dashboard/problem.html",
                error.http_status,
                heading="Connection in use",
                message="Virtual MCPs use this connection. Remove it from each of them, then delete it again:",
                links=links,
            )
        return self._d.back(visit, "/connections", "connection-deleted")

    async def test(self, request: Request, visit: Visit, _form: Form) -> Response:
        try:
            outcome = await self._d.tool(visit, "CONNECTION_TEST", {"id": str(request.path_params["id"])})
        except MeshgateError as error:
            return await self.detail(request, visit, test_error=error.message, status=error.http_status)
        return await self.detail(request, visit, test=outcome)

    async def oauth(self, request: Request, visit: Visit, _form: Form) -> Response:
        try:
            started = await self._d.tool(visit, "CONNECTION_OAUTH_START", {"id": str(request.path_params["id"])})
        except MeshgateError as error:
            return await self.detail(request, visit, test_error=error.message, status=error.http_status)
        return RedirectResponse(str(started["authorizationUrl"]), status_code=303)

    async def tool(self, request: Request, visit: Visit, **context: Any) -> Response:
        connection = await self._get(visit, str(request.path_params["id"]))
        name = str(request.path_params["tool"])
        found = next((as_dict(t) for t in as_list(connection.get("tools")) if as_dict(t).get("name") == name), None)
        if found is None:
            raise InvalidInput(f"{connection['title']} has no tool named {name[:80]!r}")
        schema = as_dict(found.get("inputSchema") or found.get("input_schema"))
        return self._d.page(
            request,
            visit,
            "dashboard/tool.html",
            context.pop("status", 200),
            section="connections",
            connection=connection,
            tool=found,
            fields=fields_of(schema),
            no_arguments=takes_no_arguments(schema),
            raw_field=RAW,
            schema=schema,
            values=context.pop("values", {}),
            **context,
        )

    async def try_tool(self, request: Request, visit: Visit, form: Form) -> Response:
        connection = await self._get(visit, str(request.path_params["id"]))
        name = str(request.path_params["tool"])
        tools = [as_dict(t) for t in as_list(connection.get("tools"))]
        found = next((t for t in tools if t.get("name") == name), dict[str, Any]())
        values = {key: "".join(items) for key, items in form.items()}
        schema = as_dict(found.get("inputSchema") or found.get("input_schema"))
        try:
            arguments = {} if takes_no_arguments(schema) else arguments_from(form, fields_of(schema))
        except InvalidInput as error:
            return await self.tool(request, visit, values=values, call_error=error.message, status=400)
        outcome = await self._caller.call(visit.principal, connection["id"], name, arguments)
        parts = content_parts(as_dict(outcome.result).get("content") or [], Budget()) if outcome.result else []
        return await self.tool(request, visit, values=values, outcome=outcome, arguments=arguments, parts=parts)

    async def _get(self, visit: Visit, connection_id: str) -> dict[str, Any]:
        return as_dict(await self._d.tool(visit, "COLLECTION_CONNECTIONS_GET", {"id": connection_id}))

    def _form(
        self,
        request: Request,
        visit: Visit,
        kind: str,
        *,
        connection: dict[str, Any] | None,
        form: Form,
        error: MeshgateError | None,
    ) -> Response:
        # Secrets typed into a refused form are not sent back: the person types them again.
        secret = {"connection_token", "headers", "env", "oauth_client_secret", "csrf_token"}
        values = {
            key: "".join(items)
            for key, items in form.items()
            if key not in secret and not key.startswith((HEADER_VALUE, ENV_VALUE))
        }
        return self._d.page(
            request,
            visit,
            "dashboard/connection_form.html",
            200 if error is None else error.http_status,
            section="connections",
            kind=kind if kind in TYPES else "HTTP",
            types=TYPES,
            connection=connection,
            values=values,
            error=None if error is None else error.message,
            local_mode=self._d.runtime.settings.local_mode,
        )


def connection_data(form: Form, kind: str, *, current: dict[str, Any] | None) -> dict[str, Any]:
    """The tool's `data` from the form; `current` is the connection being edited (None when creating).

    Editing sends only what changed, and a secret left empty as null ("keep the stored value"), so saving a
    new title leaves the command, headers and environment as they were."""
    if kind not in TYPES:
        raise InvalidInput("choose a connection type: HTTP, SSE or STDIO")
    editing = current is not None
    data: dict[str, Any] = {"title": field(form, "title"), "description": optional(form, "description")}
    if not editing:
        data["connection_type"] = kind
    if field(form, "status") in ("active", "inactive"):
        data["status"] = field(form, "status")
    stored = as_dict(as_dict(current).get("connection_headers"))
    if kind == "STDIO":
        command = _stdio_command(form, stored, editing=editing)
        if command is not None:
            data["connection_headers"] = command
        return data
    data["connection_url"] = field(form, "connection_url") or None
    token = field(form, "connection_token")
    if token:
        data["connection_token"] = token
    elif editing and field(form, "clear_token") == "on":
        data["connection_token"] = None
    stored_names = [str(name) for name in as_list(stored.get("names"))]
    headers, headers_changed = _secret_entries(form, stored_names, HEADER_VALUE, "header_remove", ("headers", ":"))
    if headers_changed:
        data["connection_headers"] = headers
    was = as_dict(current).get("oauth") if editing else None
    if field(form, "oauth") == "on":
        oauth = _oauth_setup(form, as_dict(was) if as_dict(was).get("enabled") else None)
        if oauth is not None:
            data["oauth"] = oauth
    elif as_dict(was).get("enabled"):
        data["oauth"] = None
    return data


def _oauth_setup(form: Form, stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """The OAuth setup from the form; None when it is the stored one unchanged (a new setup forgets the
    tokens held, so an unchanged one is not sent). An empty client secret keeps the stored one."""
    oauth: dict[str, Any] = {
        name: value
        for name, value in (("client_id", optional(form, "oauth_client_id")), ("scope", optional(form, "oauth_scope")))
        if value
    }
    secret = optional(form, "oauth_client_secret")
    if stored is None:
        return oauth | ({"client_secret": secret} if secret else {})
    secret_set = bool(as_dict(stored.get("client_secret")).get("set"))
    remove = secret_set and field(form, "clear_oauth_secret") == "on"
    before = {name: stored[name] for name in ("client_id", "scope") if stored.get(name)}
    if oauth == before and not secret and not remove:
        return None
    if secret:
        oauth["client_secret"] = secret
    elif secret_set and not remove:
        oauth["client_secret"] = None  # keep the stored one
    return oauth


def _stdio_command(form: Form, stored: dict[str, Any], *, editing: bool) -> dict[str, Any] | None:
    """`{command, args, cwd?, envVars}` from the form; None when editing changed none of it."""
    names = [str(name) for name in as_list(stored.get("names"))]
    env, env_changed = _secret_entries(form, names, ENV_VALUE, "env_remove", ("env", "="))
    command: dict[str, Any] = {"command": field(form, "command"), "args": _lines(form, "args")}
    if field(form, "cwd"):
        command["cwd"] = field(form, "cwd")
    before = {"command": stored.get("command"), "args": as_list(stored.get("args"))}
    if stored.get("cwd"):
        before["cwd"] = stored["cwd"]
    if editing and not env_changed and command == before:
        return None
    return {**command, "envVars": env}


def _secret_entries(
    form: Form, stored: list[str], prefix: str, remove: str, added: tuple[str, str]
) -> tuple[dict[str, str | None], bool]:
    """Named secrets (headers, environment variables) after the form, and whether they changed.

    A stored name keeps its value (null) unless a new value is typed into `prefix + name` or `remove`
    names it; lines of the `added` textarea ("name<separator>value") add or replace entries."""
    removed = set(form.get(remove, []))
    entries: dict[str, str | None] = {}
    changed = bool(removed & set(stored))
    for name in stored:
        if name not in removed:
            typed = field(form, prefix + name)
            entries[name] = typed or None
            changed = changed or bool(typed)
    new = _pairs(form, *added)
    entries.update(new)
    return entries, changed or bool(new)


def _lines(form: Form, name: str) -> list[str]:
    return [line.strip() for line in field(form, name).splitlines() if line.strip()]


def _pairs(form: Form, name: str, separator: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in _lines(form, name):
        key, found, value = line.partition(separator)
        if not found or not key.strip():
            raise InvalidInput(f"{name}: {line[:60]!r} is not a 'name{separator}value' line")
        pairs[key.strip()] = value.strip()
    return pairs
