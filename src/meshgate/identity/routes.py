"""`/login` and `/logout`: the browser session used by the OAuth consent page (and later the dashboard)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import MeshgateError, PermissionDenied, RateLimited
from meshgate.http.errors import retry_after
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web, client_address
from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from meshgate.identity.sessions import BrowserSessionService


def safe_next(value: str | None) -> str:
    """Only local paths: never send a person to another site after logging in."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) <= 8192:
        return value
    return "/login"


class LoginPages:
    def __init__(self, web: Web) -> None:
        self._web = web

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    async def login_form(self, request: Request) -> Response:
        user = await self._web.user(request)
        return self._web.page(
            request,
            "login.html",
            user=user,
            next=safe_next(request.query_params.get("next")),
            email="",
            error=None,
            **self._methods(),
        )

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
            email, password, next_url = single(form, "email"), single(form, "password"), single(form, "next")
        except MeshgateError as error:
            return self._web.page(
                request, "message.html", error.http_status, heading="Bad request", message=error.message, error=True
            )
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        user = None
        if not self._web.runtime.settings.auth_config.password_login:
            return self._login_page(request, 403, email, next_url, "Password login is turned off on this gateway.")
        if email and password:
            try:
                user = await self._web.login.log_in(email, password, client_address(request))
            except (RateLimited, PermissionDenied) as error:  # throttled, or the account's organization requires SSO
                page = self._login_page(request, error.http_status, email, next_url, f"{error.message}.")
                if isinstance(error, RateLimited):
                    page.headers["Retry-After"] = retry_after(error)
                return page
        if user is None:
            return self._login_page(request, 401, email, next_url, "The email or password is wrong.")
        async with self._web.runtime.db.transaction() as session:
            value = await BrowserSessionService(session).start(user.id, self._web.runtime.settings.session_seconds)
        response = RedirectResponse(self._web.base + safe_next(next_url), status_code=303)
        self._web.set_session(response, value)
        return response

    def _login_page(
        self, request: Request, status: int, email: str | None, next_url: str | None, error: str
    ) -> Response:
        return self._web.page(
            request,
            "login.html",
            status,
            user=None,
            next=safe_next(next_url),
            email=(email or "")[:320],
            error=error,
            **self._methods(),
        )

    def _methods(self) -> dict[str, bool]:
        """The ways to sign in that the login page offers."""
        return {
            "can_reset": self._web.accounts.can_mail,
            "password_login": self._web.runtime.settings.auth_config.password_login,
            "magic_link": self._web.magic_links.enabled,
        }

    async def logout(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except MeshgateError as error:
            return self._web.page(
                request, "message.html", error.http_status, heading="Bad request", message=error.message, error=True
            )
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        async with self._web.runtime.db.transaction() as session:
            await BrowserSessionService(session).end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(self._web.base + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
