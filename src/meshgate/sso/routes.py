"""`/sso/start` and `/sso/callback`: the browser's way to an organization's identity provider and back."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import MeshgateError, RateLimited
from meshgate.http.errors import retry_after
from meshgate.http.web import Web, client_address
from meshgate.identity.routes import safe_next
from meshgate.identity.sessions import BrowserSessionService
from meshgate.sso.flow import FLOW_SECONDS

log = logging.getLogger(__name__)

BROWSER_COOKIE = "mg_sso"  # the secret a sign-in's state is bound to; only ever sent to /sso
_COOKIE_PATH = "/sso"


class SsoPages:
    def __init__(self, web: Web) -> None:
        self._web = web

    def routes(self) -> list[Route]:
        return [
            Route("/sso/start", self.start, methods=["GET"]),
            Route("/sso/callback", self.callback, methods=["GET"]),
        ]

    async def start(self, request: Request) -> Response:
        slug = (request.query_params.get("org") or "").strip().lower()[:100]
        if not slug:
            return self._message(request, 400, "Enter the slug of your organization to sign in with its provider.")
        next_url = safe_next(request.query_params.get("next"))
        try:
            started = await self._web.sso.start(
                slug, next_url if next_url != "/login" else "/app", client_address(request)
            )
        except MeshgateError as error:
            page = self._message(request, error.http_status, f"{error.message}.")
            if isinstance(error, RateLimited):
                page.headers["Retry-After"] = retry_after(error)
            return page
        response = RedirectResponse(started.url, status_code=303)
        response.set_cookie(
            BROWSER_COOKIE,
            started.browser,
            max_age=FLOW_SECONDS,
            httponly=True,
            samesite="lax",  # the provider sends the browser back with a cross-site top-level GET: Lax sends it
            secure=self._web.secure,
            path=self._web.base + _COOKIE_PATH,
        )
        return response

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        current = await self._web.user(request)
        try:
            signed_in = await self._web.sso.finish(
                query.get("state"),
                request.cookies.get(BROWSER_COOKIE),
                code=query.get("code"),
                iss=query.get("iss"),
                error=query.get("error"),
                signed_in_as=None if current is None else current.id,
            )
        except MeshgateError as error:
            log.info("single sign-on refused: %s", error.message)
            response = self._message(request, error.http_status, f"{error.message}.")
            response.delete_cookie(BROWSER_COOKIE, path=self._web.base + _COOKIE_PATH)
            return response
        async with self._web.runtime.db.transaction() as session:
            value = await BrowserSessionService(session).start(
                signed_in.user.id, self._web.runtime.settings.session_seconds
            )
        response = RedirectResponse(self._web.base + safe_next(signed_in.next), status_code=303)
        self._web.set_session(response, value)
        response.delete_cookie(BROWSER_COOKIE, path=self._web.base + _COOKIE_PATH)
        return response

    def _message(self, request: Request, status: int, message: str) -> Response:
        return self._web.page(
            request,
            "message.html",
            status,
            heading="Single sign-on",
            message=message,
            error=True,
            back_url=f"{self._web.base}/login",
            back_label="Back to the login page",
        )
