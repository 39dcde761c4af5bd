"""`/login/magic`: ask for a sign-in link by email, and the page the link opens."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import MeshgateError, PermissionDenied, RateLimited
from meshgate.http.errors import retry_after
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web, client_address
from meshgate.identity.accounts import OTHER_BROWSER
from meshgate.identity.magic_links import MINUTES
from meshgate.identity.routes import safe_next
from meshgate.identity.sessions import BrowserSessionService

BROWSER_COOKIE = "mg_magic"  # the secret a link is bound to; only ever sent to /login/magic
NEXT_COOKIE = "mg_magic_next"
_COOKIE_PATH = "/login/magic"
_SENT = (
    "If an account has this address, a sign-in link is on its way to it. Open it in this browser within "
    f"{MINUTES} minutes; it works once."
)


class MagicLinkPages:
    def __init__(self, web: Web) -> None:
        self._web = web

    def routes(self) -> list[Route]:
        return [
            Route("/login/magic", self.ask, methods=["POST"]),
            Route("/login/magic/sent", self.sent, methods=["GET"]),
            Route("/login/magic/{token}", self.open_link, methods=["GET"]),
        ]

    async def ask(self, request: Request) -> Response:
        if not self._web.magic_links.enabled:
            return self._message(request, 404, "Sign-in links", "This gateway does not send sign-in links.")
        try:
            form = await read_form(request)
        except MeshgateError as error:
            return self._message(request, error.http_status, "Bad request", error.message)
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        email = (single(form, "email") or "").strip()
        if not email:
            return self._message(request, 400, "Sign-in links", "Enter your email address to get a link.")
        browser = secrets.token_urlsafe(32)
        try:
            await self._web.magic_links.request(email, client_address(request), browser)
        except RateLimited as error:
            page = self._message(request, 429, "Sign-in links", f"{error.message}.")
            page.headers["Retry-After"] = retry_after(error)
            return page
        # The same answer, and the same cookies, for every address: nothing tells whether an account has it.
        response = RedirectResponse(f"{self._web.base}/login/magic/sent", status_code=303)
        path = self._web.base + _COOKIE_PATH
        for name, value in ((BROWSER_COOKIE, browser), (NEXT_COOKIE, safe_next(single(form, "next")))):
            response.set_cookie(
                name,
                value,
                max_age=MINUTES * 60,
                httponly=True,
                samesite="lax",  # a link opened from a mail client is a cross-site top-level GET: Lax sends it
                secure=self._web.secure,
                path=path,
            )
        return response

    async def sent(self, request: Request) -> Response:
        return self._web.page(
            request, "message.html", heading="Check your email", message=_SENT, error=False, back_url=None
        )

    async def open_link(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            user = await self._web.magic_links.sign_in(token, request.cookies.get(BROWSER_COOKIE))
        except PermissionDenied as error:
            heading = (
                "Open the link in the browser that asked for it" if error.message == OTHER_BROWSER else "Sign-in link"
            )
            return self._message(request, 403, heading, f"{error.message}.")
        except MeshgateError as error:
            return self._message(request, error.http_status, "Sign-in link", f"{error.message}.")
        async with self._web.runtime.db.transaction() as session:
            value = await BrowserSessionService(session).start(user.id, self._web.runtime.settings.session_seconds)
        next_url = safe_next(request.cookies.get(NEXT_COOKIE))
        target = self._web.base + (next_url if next_url != "/login" else "/app")
        response = RedirectResponse(target, status_code=303)
        self._web.set_session(response, value)
        for name in (BROWSER_COOKIE, NEXT_COOKIE):
            response.delete_cookie(name, path=self._web.base + _COOKIE_PATH)
        return response

    def _message(self, request: Request, status: int, heading: str, message: str) -> Response:
        return self._web.page(
            request,
            "message.html",
            status,
            heading=heading,
            message=message,
            error=True,
            back_url=f"{self._web.base}/login",
            back_label="Back to the login page",
        )
