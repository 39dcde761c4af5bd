"""Virtual MCPs: list, create and edit (connections, tools, renames), delete, and the merged tool list.

The preview is the live merged view the endpoint itself serves (`runtime.virtual.view`): the same
catalog, cache and `build_view`, so it shows exactly what `/mcp/virtual/{id}` lists, including the
connections left out right now and why. Lists stored on the connections could be stale or empty
(never tested) and would show a list no client sees.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.errors import MeshgateError
from meshgate.http.pages import SECURITY_HEADERS
from meshgate.jsonvalues import as_dict, as_list
from meshgate.mcp.invoke import refusal
from meshgate.virtual.catalog import UpstreamLists
from meshgate.virtual.models import Member, ToolOverride
from meshgate.virtual.view import tool_names

STATUSES = ("active", "inactive")
PREVIEW_POLICY = "; connect-src 'self'"


class VirtualPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/virtual", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/virtual", d.action(self.create), methods=["POST"]),
            Route("/app/{org}/virtual/new", d.view(self.new), methods=["GET"]),
            Route("/app/{org}/virtual/new/preview", d.action(self.preview), methods=["POST"]),
            Route("/app/{org}/virtual/{id}", d.view(self.detail), methods=["GET"]),
            Route("/app/{org}/virtual/{id}/edit", d.view(self.edit), methods=["GET"]),
            Route("/app/{org}/virtual/{id}/edit", d.action(self.update), methods=["POST"]),
            Route("/app/{org}/virtual/{id}/edit/preview", d.action(self.preview), methods=["POST"]),
            Route("/app/{org}/virtual/{id}/delete", d.action(self.delete), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        listed = await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_LIST", {"limit": 1000})
        items = [as_dict(item) for item in as_list(listed["items"])]
        return self._d.page(request, visit, "dashboard/virtual.html", section="virtual", items=items)

    async def new(self, request: Request, visit: Visit) -> Response:
        if not visit.can("COLLECTION_VIRTUAL_MCP_CREATE"):
            raise refusal("COLLECTION_VIRTUAL_MCP_CREATE")  # the empty form runs no tool that would refuse
        return await self._form(request, visit, current=None, data={"connections": []}, error=None)

    async def create(self, request: Request, visit: Visit, form: Form) -> Response:
        data = virtual_data(form)
        try:
            created = await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data})
        except MeshgateError as error:
            return await self._form(request, visit, current=None, data=data, error=error)
        return self._d.back(visit, f"/virtual/{created['id']}", "virtual-created")

    async def detail(self, request: Request, visit: Visit) -> Response:
        current = await self._get(visit, str(request.path_params["id"]))
        # The GET above checked the permission; the directory gives the definition the endpoint serves.
        definition = await self._d.runtime.virtual.get(visit.organization.id, current["id"])
        view = await self._d.runtime.virtual.view(definition)
        titles = view.titles
        tools = [
            {
                **tool,
                "connection": titles.get(view.tool_routes[tool["name"]].connection_id, ""),
                "upstream_name": view.tool_routes[tool["name"]].name,
            }
            for tool in view.tools
        ]
        return self._d.page(
            request,
            visit,
            "dashboard/virtual_detail.html",
            section="virtual",
            item=current,
            tools=tools,
            left_out=view.left_out,
            prompts=len(view.prompts),
            resources=len(view.resources) + len(view.templates),
        )

    async def edit(self, request: Request, visit: Visit) -> Response:
        if not visit.can("COLLECTION_VIRTUAL_MCP_UPDATE"):
            raise refusal("COLLECTION_VIRTUAL_MCP_UPDATE")
        current = await self._get(visit, str(request.path_params["id"]))
        return await self._form(request, visit, current=current, data=current, error=None)

    async def update(self, request: Request, visit: Visit, form: Form) -> Response:
        current = await self._get(visit, str(request.path_params["id"]))
        connections = await self._connections(visit)
        data = keep_unseen(virtual_data(form), current, connections)
        try:
            await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_UPDATE", {"id": current["id"], "data": data})
        except MeshgateError as error:
            return await self._form(request, visit, current=current, data=data, error=error)
        return self._d.back(visit, f"/virtual/{current['id']}", "virtual-updated")

    async def preview(self, request: Request, visit: Visit, form: Form) -> Response:
        """The names clients would see if the form were saved as it stands: JSON for the page's script,
        else the form again with its preview brought up to date (the same form without JavaScript)."""
        editing = "id" in request.path_params
        tool = "COLLECTION_VIRTUAL_MCP_UPDATE" if editing else "COLLECTION_VIRTUAL_MCP_CREATE"
        if not visit.can(tool):
            raise refusal(tool)  # only those who may save the form are told what saving would name
        data = virtual_data(form)
        current = await self._get(visit, str(request.path_params["id"])) if editing else None
        if "application/json" not in request.headers.get("accept", ""):
            return await self._form(request, visit, current=current, data=data, error=None)
        rows = form_rows(await self._connections(visit), as_list(data["connections"]))
        names = {f"name:{row['id']}:{tool['name']}": tool["default"] for row in rows for tool in row["tools"]}
        return JSONResponse({"names": names, "exposed": exposed_list(rows)})

    async def delete(self, request: Request, visit: Visit, _form: Form) -> Response:
        await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_DELETE", {"id": str(request.path_params["id"])})
        return self._d.back(visit, "/virtual", "virtual-deleted")

    async def _get(self, visit: Visit, virtual_id: str) -> dict[str, Any]:
        return as_dict(await self._d.tool(visit, "COLLECTION_VIRTUAL_MCP_GET", {"id": virtual_id}))

    async def _connections(self, visit: Visit) -> list[dict[str, Any]]:
        listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
        return [as_dict(item) for item in as_list(listed["items"])]

    async def _form(
        self,
        request: Request,
        visit: Visit,
        *,
        current: dict[str, Any] | None,
        data: dict[str, Any],
        error: MeshgateError | None,
    ) -> Response:
        connections = await self._connections(visit)
        response = self._d.page(
            request,
            visit,
            "dashboard/virtual_form.html",
            200 if error is None else error.http_status,
            section="virtual",
            item=current,
            values=data,
            rows=(rows := form_rows(connections, as_list(data.get("connections")))),
            exposed=exposed_list(rows),
            statuses=STATUSES,
            error=None if error is None else error.message,
        )
        # The pages' policy forbids every connection; this form's script asks for its names, same origin only.
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"] + PREVIEW_POLICY
        return response


def virtual_data(form: Form) -> dict[str, Any]:
    """The tool's `data` from the form: chosen connections in page order, each with its tools and overrides."""
    data: dict[str, Any] = {
        "title": field(form, "title"),
        "description": optional(form, "description"),
        "instructions": optional(form, "instructions"),
    }
    if field(form, "status") in STATUSES:
        data["status"] = field(form, "status")
    members: list[dict[str, Any]] = []
    for connection_id in dict.fromkeys(value.strip() for value in form.get("connection", [])):
        if not connection_id:
            continue
        member: dict[str, Any] = {"connection_id": connection_id}
        if field(form, f"mode:{connection_id}") == "some":
            member["selected_tools"] = list(dict.fromkeys(form.get(f"tool:{connection_id}", [])))
        overrides: dict[str, dict[str, str]] = {}
        for kind in ("name", "description"):
            prefix = f"{kind}:{connection_id}:"
            for key in form:
                value = field(form, key) if key.startswith(prefix) else ""
                if value:
                    overrides.setdefault(key.removeprefix(prefix), {})[kind] = value
        if overrides:
            member["tool_overrides"] = overrides
        members.append(member)
    data["connections"] = members
    return data


def keep_unseen(data: dict[str, Any], current: dict[str, Any], connections: list[dict[str, Any]]) -> dict[str, Any]:
    """Keep what the form cannot show: resource and prompt selections, and choices about tools the
    connection does not list right now (so saving the form never drops them silently)."""
    before = {str(member["connection_id"]): as_dict(member) for member in as_list(current.get("connections"))}
    known = {str(c["id"]): {str(as_dict(t).get("name")) for t in as_list(c.get("tools"))} for c in connections}
    for member in as_list(data.get("connections")):
        previous = before.get(member["connection_id"])
        if previous is None:
            continue
        for key in ("selected_resources", "selected_prompts"):
            if previous.get(key) is not None:
                member[key] = previous[key]
        listed = known.get(member["connection_id"], set())
        if member.get("selected_tools") is not None and previous.get("selected_tools") is not None:
            hidden = [name for name in previous["selected_tools"] if name not in listed]
            member["selected_tools"] = [*member["selected_tools"], *hidden]
        hidden_overrides = {
            name: value for name, value in as_dict(previous.get("tool_overrides")).items() if name not in listed
        }
        if hidden_overrides:
            member["tool_overrides"] = {**hidden_overrides, **as_dict(member.get("tool_overrides"))}
    return data


def form_rows(connections: list[dict[str, Any]], members: list[Any]) -> list[dict[str, Any]]:
    """One row per connection for the form: chosen ones first in their order, then the others as listed."""
    chosen = {str(as_dict(m).get("connection_id")): as_dict(m) for m in members}
    by_id = {str(c["id"]): c for c in connections}
    order = [cid for cid in chosen if cid in by_id] + [cid for cid in by_id if cid not in chosen]
    rows: list[dict[str, Any]] = [
        {
            "id": connection_id,
            "title": by_id[connection_id]["title"],
            "status": by_id[connection_id]["status"],
            "included": connection_id in chosen,
            "some": as_dict(chosen.get(connection_id)).get("selected_tools") is not None,
            "tools": _tool_rows(by_id[connection_id], as_dict(chosen.get(connection_id))),
        }
        for connection_id in order
    ]
    _name_tools(rows, by_id, [chosen[row["id"]] for row in rows if row["included"]])
    return rows


def exposed_list(rows: list[dict[str, Any]]) -> list[str]:
    """The names clients will see, in the order they will list them."""
    return [tool["default"] for row in rows if row["included"] for tool in row["tools"] if tool["exposed"]]


def _name_tools(rows: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], chosen: list[dict[str, Any]]) -> None:
    """Give each tool row the name clients see (`default`) and whether they see it (`exposed`), by the
    virtual MCP's own naming over the tools the form shows. A tool left out gets the name it would have
    with all tools of all connections (those chosen first, as saving orders them)."""
    members = [_member(member, by_id) for member in chosen]
    lists = [UpstreamLists(cid, "", tools=tuple(as_dict(t) for t in as_list(by_id[cid].get("tools")))) for cid in by_id]
    exposed = tool_names(members, lists)
    everything = [Member(m.connection_id, m.connection_title, tool_overrides=m.tool_overrides) for m in members]
    everything += [_member({"connection_id": row["id"]}, by_id) for row in rows if not row["included"]]
    fallback = tool_names(everything, lists)
    for row in rows:
        for tool in row["tools"]:
            key = (row["id"], tool["name"])
            tool["exposed"] = key in exposed
            tool["default"] = exposed.get(key) or fallback.get(key) or tool["name"]


def _member(member: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> Member:
    connection_id = str(member["connection_id"])
    selected = member.get("selected_tools")
    overrides = as_dict(member.get("tool_overrides"))
    return Member(
        connection_id,
        str(by_id[connection_id]["title"]),
        selected_tools=None if selected is None else frozenset(str(name) for name in as_list(selected)),
        tool_overrides={
            str(tool): ToolOverride(name=as_dict(value).get("name"), description=as_dict(value).get("description"))
            for tool, value in overrides.items()
        },
    )


def _tool_rows(connection: dict[str, Any], member: dict[str, Any]) -> list[dict[str, Any]]:
    """The connection's discovered tools with what the member chose for each (nothing chosen = all)."""
    selected = member.get("selected_tools")
    overrides = as_dict(member.get("tool_overrides"))
    rows: list[dict[str, Any]] = []
    for tool in (as_dict(item) for item in as_list(connection.get("tools"))):
        name = str(tool.get("name") or "")
        if not name:
            continue
        override = as_dict(overrides.get(name))
        rows.append(
            {
                "name": name,
                "description": tool.get("description") or "",
                "checked": selected is None or name in selected,
                "rename": override.get("name") or "",
                "describe": override.get("description") or "",
            }
        )
    return rows
