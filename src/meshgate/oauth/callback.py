"""`/oauth/callback`: where an upstream's authorization server sends the person back to meshgate (meshgate as
an OAuth client); the code is exchanged, the tokens sealed and the newly authorized server's tools discovered."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.connections.discovery import discover_once
from meshgate.connections.models import Connection
from meshgate.connections.service import ConnectionService
from meshgate.errors import MeshgateError, UpstreamError
from meshgate.http.web import Web


class UpstreamCallback:
    def __init__(self, web: Web) -> None:
        self._web = web
        self._runtime = web.runtime

    def routes(self) -> list[Route]:
        return [Route("/oauth/callback", self.callback, methods=["GET"])]

    def _message(self, request: Request, status: int, heading: str, message: str) -> Response:
        return self._web.page(request, "message.html", status, heading=heading, message=message, error=True)

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state")
        if not state:
            return self._message(request, 400, "Cannot finish", "The authorization response has no state.")
        # Only the person who started the flow may finish it; otherwise anyone sent the link would link their
        # upstream account into someone else's connection.
        user = await self._web.user(request)
        if user is None:
            target = request.url.path + "?" + request.url.query
            return RedirectResponse(f"{self._web.base}/login?next={quote(target, safe='')}", status_code=303)
        try:
            organization_id, connection_id = await self._runtime.upstream_oauth.finish(
                state, user.id, params.get("code"), params.get("iss"), params.get("error")
            )
        except MeshgateError as error:
            return self._message(request, 400, "Authorization failed", error.message)
        connection = await self._discover(organization_id, connection_id)
        return self._web.page(
            request,
            "message.html",
            heading="Connected",
            message=f"meshgate is now authorized at {connection.title}. You can close this window.",
            error=False,
        )

    async def _discover(self, organization_id: str, connection_id: str) -> Connection:
        """Learn the newly authorized server's tools now (nothing could be discovered before)."""
        found, problem = None, None
        try:
            upstreams = self._runtime.upstreams
            config = (await upstreams.get(organization_id, connection_id)).config
            found = await discover_once(config, upstreams.addresses, upstreams.stdio)
        except UpstreamError as error:
            problem = error.message
        async with self._runtime.db.transaction() as session:
            service = ConnectionService(session, organization_id, self._runtime.vault)
            return await service.record_discovery(connection_id, found, problem)
