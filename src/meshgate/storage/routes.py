"""`GET|HEAD|PUT /api/storage/objects/{token}`: the signed URLs of the local directory store.

The token is the whole credential (`meshgate.storage.signing`): no bearer token, no cookie. An upload must
carry the Content-Type it was signed for and stay within `MESHGATE_STORAGE_MAX_OBJECT_BYTES`. Any origin may
use a URL (CORS `*`, as a bucket configured for browser uploads answers): holding the URL is the permission, and
no cookie is ever sent or read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from meshgate.errors import InvalidInput, MeshgateError, NotFound, PayloadTooLarge, PermissionDenied
from meshgate.http.errors import http_error
from meshgate.storage.models import checked_content_type
from meshgate.storage.signing import URL_PATH
from meshgate.storage.stores import ObjectStores

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "ETag"}
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, HEAD, PUT",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


class LocalObjectRoutes:
    def __init__(self, stores: ObjectStores) -> None:
        self._stores = stores

    def routes(self) -> list[Route]:
        return [
            Route(URL_PATH + "{token}", self.download, methods=["GET", "HEAD"]),
            Route(URL_PATH + "{token}", self.upload, methods=["PUT"]),
            Route(URL_PATH + "{token}", self.preflight, methods=["OPTIONS"]),
        ]

    async def preflight(self, _request: Request) -> Response:
        return Response(status_code=204, headers={**CORS, **_PREFLIGHT})

    async def download(self, request: Request) -> Response:
        local = self._stores.local
        try:
            grant = local.signer.check(str(request.path_params["token"]), request.method)
            found = await local.head(grant.key)
            if found is None:
                raise NotFound("no object under this URL's key (deleted, or never uploaded)")
        except MeshgateError as exc:
            return http_error(exc, headers=CORS)
        headers = {"ETag": found.etag} if found.etag else {}
        return FileResponse(
            local.file(grant.key),
            media_type=found.content_type or "application/octet-stream",
            headers={**headers, **CORS, "Cache-Control": "private, no-store"},
        )

    async def upload(self, request: Request) -> Response:
        local, limit = self._stores.local, self._stores.max_object_bytes
        try:
            grant = local.signer.check(str(request.path_params["token"]), "PUT")
            sent_type = request.headers.get("content-type")
            if grant.content_type is not None and sent_type != grant.content_type:
                raise PermissionDenied(
                    f"this URL is signed for Content-Type {grant.content_type!r}; the upload sent {sent_type!r}"
                )
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                if not length.isdigit():
                    raise InvalidInput("Content-Length must be a number of bytes")
                raise PayloadTooLarge(f"the object is {length} bytes; this store takes at most {limit}")
            media = grant.content_type or _media_type(sent_type)
            stored = await local.write(grant.key, _body(request), media, limit)
        except MeshgateError as exc:
            return http_error(
                exc, headers={**CORS, "Connection": "close"} if isinstance(exc, PayloadTooLarge) else CORS
            )
        return JSONResponse({"size": stored.size, "etag": stored.etag}, headers={**CORS, "ETag": stored.etag or ""})


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _media_type(sent: str | None) -> str | None:
    """The Content-Type of an upload whose URL named none, kept when it is a plausible media type."""
    try:
        return checked_content_type(sent)
    except InvalidInput:
        return None
