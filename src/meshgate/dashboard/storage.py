"""Object storage: the organization's objects (a page at a time, download, delete) and where they are kept."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.errors import MeshgateError
from meshgate.jsonvalues import as_dict, as_list

PAGE_SIZE = 50


class StoragePages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/storage", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/storage/download", d.view(self.download), methods=["GET"]),
            Route("/app/{org}/storage/delete", d.action(self.delete), methods=["POST"]),
            Route("/app/{org}/storage/settings", d.action(self.save_settings), methods=["POST"]),
            Route("/app/{org}/storage/settings/clear", d.action(self.clear_settings), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        prefix = request.query_params.get("prefix", "")
        arguments: dict[str, Any] = {"prefix": prefix, "limit": PAGE_SIZE}
        if cursor := request.query_params.get("cursor"):
            arguments["cursor"] = cursor
        listed: dict[str, Any] = {"objects": [], "nextCursor": None}
        try:
            listed = as_dict(await self._d.tool(visit, "LIST_OBJECTS", arguments))
        except MeshgateError as error:  # a bad prefix, or a bucket that stopped answering: say so on the page
            context["list_error"] = error.message
        config = as_dict(await self._d.tool(visit, "STORAGE_CONFIG_GET")) if visit.can("STORAGE_CONFIG_GET") else {}
        return self._d.page(
            request,
            visit,
            "dashboard/storage.html",
            status,
            section="storage",
            objects=[as_dict(item) for item in as_list(listed["objects"])],
            next_cursor=listed.get("nextCursor"),
            prefix=prefix,
            config=config,
            **context,
        )

    async def download(self, request: Request, visit: Visit) -> Response:
        """To a short-lived URL of the object (the browser fetches it from the store itself)."""
        signed = as_dict(await self._d.tool(visit, "GET_PRESIGNED_URL", {"key": request.query_params.get("key", "")}))
        return RedirectResponse(str(signed["url"]), status_code=303, headers={"Cache-Control": "no-store"})

    async def delete(self, request: Request, visit: Visit, form: Form) -> Response:
        try:
            await self._d.tool(visit, "DELETE_OBJECT", {"key": field(form, "key")})
        except MeshgateError as error:
            return await self.index(request, visit, error.http_status, list_error=error.message)
        return self._d.back(visit, "/storage", "object-deleted")

    async def save_settings(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments: dict[str, Any] = {
            "endpoint": field(form, "endpoint"),
            "bucket": field(form, "bucket"),
            "region": field(form, "region") or "us-east-1",
            "accessKeyId": field(form, "accessKeyId"),
            "pathStyle": field(form, "pathStyle") == "on",
        }
        if secret := optional(form, "secretAccessKey"):
            arguments["secretAccessKey"] = secret
        try:
            await self._d.tool(visit, "STORAGE_CONFIG_SET", arguments)
        except MeshgateError as error:
            shown = {key: value for key, value in arguments.items() if key != "secretAccessKey"}
            return await self.index(request, visit, error.http_status, settings_error=error.message, entered=shown)
        return self._d.back(visit, "/storage", "storage-saved")

    async def clear_settings(self, request: Request, visit: Visit, _form: Form) -> Response:
        await self._d.tool(visit, "STORAGE_CONFIG_CLEAR")
        return self._d.back(visit, "/storage", "storage-cleared")
