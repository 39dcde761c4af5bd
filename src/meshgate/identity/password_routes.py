"""`/password/forgot`, `/password/reset/{token}` and `/verify-email/{token}`: the pages emailed links open."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import MeshgateError, RateLimited
from meshgate.http.errors import retry_after
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web, client_address
from meshgate.identity.passwords import MIN_PASSWORD

_SENT = (
    "If an account has this address, a link to choose a new password is on its way to it. "
    "The link works once, within 30 minutes."
)


class PasswordPages:
    def __init__(self, web: Web) -> None:
        self._web = web

    def routes(self) -> list[Route]:
        return [
            Route("/password/forgot", self.forgot_form, methods=["GET"]),
            Route("/password/forgot", self.forgot, methods=["POST"]),
            Route("/password/forgot/sent", self.sent, methods=["GET"]),
            Route("/password/reset/{token}", self.reset_form, methods=["GET"]),
            Route("/password/reset/{token}", self.reset, methods=["POST"]),
            Route("/verify-email/{token}", self.verify, methods=["GET"]),
        ]

    async def forgot_form(self, request: Request) -> Response:
        if not self._web.accounts.can_mail:
            return self._message(request, 404, "Password reset", "This gateway sends no email; ask its operator.")
        return self._web.page(request, "password_forgot.html", error=None)

    async def forgot(self, request: Request) -> Response:
        if not self._web.accounts.can_mail:
            return self._message(request, 404, "Password reset", "This gateway sends no email; ask its operator.")
        try:
            form = await read_form(request)
        except MeshgateError as error:
            return self._message(request, error.http_status, "Bad request", error.message, error=True)
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        email = (single(form, "email") or "").strip()
        if not email:
            return self._web.page(request, "password_forgot.html", 400, error="Enter your email address.")
        try:
            await self._web.accounts.request_reset(email, client_address(request))
        except RateLimited as error:
            page = self._message(request, 429, "Password reset", f"{error.message}.", error=True)
            page.headers["Retry-After"] = retry_after(error)
            return page
        # POST, redirect, GET: reloading the answer sends no second mail
        return RedirectResponse(f"{self._web.base}/password/forgot/sent", status_code=303)

    async def sent(self, request: Request) -> Response:
        return self._message(request, 200, "Check your email", _SENT)

    async def reset_form(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            user = await self._web.accounts.check_reset(token)
        except MeshgateError as error:
            return self._message(request, error.http_status, "Password reset", error.message, error=True)
        return self._reset_page(request, token, user.email)

    async def reset(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            form = await read_form(request)
        except MeshgateError as error:
            return self._message(request, error.http_status, "Bad request", error.message, error=True)
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        password = single(form, "password") or ""
        email = ""
        try:
            email = (await self._web.accounts.check_reset(token)).email
            if password != (single(form, "confirm") or ""):
                return self._reset_page(request, token, email, "The two passwords are not the same.", 400)
            await self._web.accounts.reset_password(token, password)
        except MeshgateError as error:
            if not email or error.http_status == 404:
                return self._message(request, error.http_status, "Password reset", error.message, error=True)
            return self._reset_page(request, token, email, f"{error.message}.", error.http_status)
        return self._message(
            request,
            200,
            "Password changed",
            "Your new password is set, and every browser that was signed in to this account was signed out.",
            back_url=f"{self._web.base}/login",
            back_label="Log in",
        )

    async def verify(self, request: Request) -> Response:
        try:
            user = await self._web.accounts.verify_email(str(request.path_params["token"]))
        except MeshgateError as error:
            return self._message(request, error.http_status, "Email address", error.message, error=True)
        return self._message(
            request,
            200,
            "Email address confirmed",
            f"{user.email} is confirmed as the address of your account.",
            back_url=f"{self._web.base}/app",
            back_label="Open the dashboard",
        )

    def _reset_page(
        self, request: Request, token: str, email: str, error: str | None = None, status: int = 200
    ) -> Response:
        return self._web.page(
            request, "password_reset.html", status, token=token, email=email, error=error, min_password=MIN_PASSWORD
        )

    def _message(
        self,
        request: Request,
        status: int,
        heading: str,
        message: str,
        *,
        error: bool = False,
        back_url: str | None = None,
        back_label: str | None = None,
    ) -> Response:
        return self._web.page(
            request,
            "message.html",
            status,
            heading=heading,
            message=message,
            error=error,
            back_url=back_url,
            back_label=back_label,
        )
