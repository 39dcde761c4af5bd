"""A connection's resources and prompts: read a resource (by URI or from a template's form), get a prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._contents import Budget, Part, content_parts, resource_parts
from meshgate.dashboard._core import Dashboard, Form, Visit
from meshgate.dashboard._reads import UpstreamReader
from meshgate.dashboard._schema import ArgumentField, arguments_from, prompt_fields
from meshgate.dashboard._uritemplate import expand, variables
from meshgate.errors import InvalidInput, UpstreamError
from meshgate.jsonvalues import as_dict, as_list

MAX_URI = 8192


@dataclass(frozen=True, slots=True)
class ShownMessage:
    role: str
    parts: list[Part]


class ResourcePages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard
        self._reader = UpstreamReader(dashboard.runtime.calls, dashboard.runtime.limiter)

    def routes(self) -> list[Route]:
        d = self._d
        return [
            # A read is a GET with the URI (or the template and its values) in the query, unlike "Try it": it
            # can be bookmarked and reloaded, and MCP means resources/read to have no effects, so a link from
            # another site can make the person read a resource they may read but shows that site nothing
            # (the session cookie is SameSite=Lax and pages refuse frames).
            Route("/app/{org}/connections/{id}/resource", d.view(self.resource), methods=["GET"]),
            # `path`: a prompt name may hold `/`, as a tool name may.
            Route("/app/{org}/connections/{id}/prompts/{prompt:path}", d.view(self.prompt), methods=["GET"]),
            Route("/app/{org}/connections/{id}/prompts/{prompt:path}", d.action(self.get_prompt), methods=["POST"]),
        ]

    async def resource(self, request: Request, visit: Visit) -> Response:
        connection = await self._connection(visit, str(request.path_params["id"]))
        query = request.query_params
        uri = query.get("uri", "").strip()
        template = query.get("template", "").strip()
        fields: list[ArgumentField] = []
        values: dict[str, str] = {}
        context: dict[str, Any] = {"parts": None, "template_error": None, "read_error": None}
        status = 200
        if len(uri) > MAX_URI or len(template) > MAX_URI:
            raise InvalidInput(f"a resource URI or template is at most {MAX_URI} characters")
        if template:
            uri = ""
            try:
                fields = [ArgumentField(v.name, "text", v.required, "") for v in variables(template)]
                values = {f.input_name: query.get(f.input_name, "") for f in fields}
                if query.get("expand"):
                    chosen = arguments_from({name: [value] for name, value in values.items()}, fields)
                    uri = expand(template, {name: str(value) for name, value in chosen.items()})
            except InvalidInput as error:
                context["template_error"], status = error.message, error.http_status
        if uri:
            try:
                result = await self._reader.read(visit.principal, connection["id"], uri)
                context["parts"] = resource_parts(result.get("contents"), Budget())
            except UpstreamError as error:
                context["read_error"], status = f"{error.code}: {error.message}", error.http_status
        return self._d.page(
            request,
            visit,
            "dashboard/resource.html",
            status,
            section="connections",
            connection=connection,
            uri=uri,
            uri_template=template,
            fields=fields,
            values=values,
            **context,
        )

    async def prompt(self, request: Request, visit: Visit, **context: Any) -> Response:
        connection = await self._connection(visit, str(request.path_params["id"]))
        found = await self._find_prompt(visit, connection, str(request.path_params["prompt"]))
        return self._d.page(
            request,
            visit,
            "dashboard/prompt.html",
            context.pop("status", 200),
            section="connections",
            connection=connection,
            prompt=found,
            fields=prompt_fields(found),
            values=context.pop("values", {}),
            messages=context.pop("messages", None),
            **context,
        )

    async def get_prompt(self, request: Request, visit: Visit, form: Form) -> Response:
        connection = await self._connection(visit, str(request.path_params["id"]))
        name = str(request.path_params["prompt"])
        fields = prompt_fields(await self._find_prompt(visit, connection, name))
        values = {f.input_name: "".join(form.get(f.input_name, [])) for f in fields}
        try:
            arguments = {key: str(value) for key, value in arguments_from(form, fields).items()} if fields else {}
        except InvalidInput as error:
            return await self.prompt(request, visit, values=values, call_error=error.message, status=400)
        try:
            result = await self._reader.prompt(visit.principal, connection["id"], name, arguments)
        except UpstreamError as error:
            failed = f"{error.code}: {error.message}"
            return await self.prompt(request, visit, values=values, call_error=failed, status=error.http_status)
        budget = Budget()
        messages = [
            ShownMessage(str(as_dict(m).get("role") or ""), content_parts(as_dict(m).get("content"), budget))
            for m in as_list(result.get("messages"))
        ]
        description = result.get("description")
        return await self.prompt(
            request,
            visit,
            values=values,
            messages=messages,
            arguments=arguments,
            result_description=description if isinstance(description, str) else None,
        )

    async def _find_prompt(self, visit: Visit, connection: dict[str, Any], name: str) -> dict[str, Any]:
        listing = await self._reader.prompts(visit.principal, connection["id"])
        found = next((item for item in listing.items if item.get("name") == name), None)
        if found is None:
            raise InvalidInput(f"{connection['title']} lists no prompt named {name[:80]!r}")
        return found

    async def _connection(self, visit: Visit, connection_id: str) -> dict[str, Any]:
        return as_dict(await self._d.tool(visit, "COLLECTION_CONNECTIONS_GET", {"id": connection_id}))
