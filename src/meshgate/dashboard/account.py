"""`/app/account`: the signed-in person's own account: email verification, password change, sessions.

Sessions and the password belong to the person, not to an organization, so these pages call the account
services for the logged-in user directly rather than an organization's management tools; the page still
wears the dashboard's layout and navigation (of one of the person's organizations)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Visit
from meshgate.errors import MeshgateError
from meshgate.http.forms import read_form, single
from meshgate.identity.models import User
from meshgate.identity.passwords import MIN_PASSWORD
from meshgate.identity.service import OrganizationService, member_principal
from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from meshgate.identity.sessions import BrowserSessionService

NOTICES = {
    "password": "Your password was changed; your other browsers were signed out.",
    "revoked": "The session was ended.",
    "verification": "A link to confirm your address is on its way to it.",
}

_Action = Callable[[User, dict[str, list[str]]], Awaitable[str]]


class AccountPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._dashboard = dashboard
        self._web = dashboard.web

    def routes(self) -> list[Route]:
        return [
            Route("/app/account", self.show, methods=["GET"]),
            Route("/app/account/password", self.change_password, methods=["POST"]),
            Route("/app/account/sessions/revoke", self.revoke, methods=["POST"]),
            Route("/app/account/verify", self.send_verification, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        user = await self._web.user(request)
        if user is None:
            return self._to_login()
        notice = NOTICES.get(request.query_params.get("notice", ""))
        return await self._page(request, user, notice=notice)

    async def change_password(self, request: Request) -> Response:
        async def act(user: User, form: dict[str, list[str]]) -> str:
            new = single(form, "new_password") or ""
            if new != (single(form, "confirm") or ""):
                raise _Refusal("The two new passwords are not the same.")
            await self._web.accounts.change_password(
                user, single(form, "current_password") or "", new, keep_session=request.cookies.get(SESSION_COOKIE)
            )
            return "password"

        return await self._act(request, act)

    async def revoke(self, request: Request) -> Response:
        async def act(user: User, form: dict[str, list[str]]) -> str:
            async with self._web.runtime.db.transaction() as session:
                await BrowserSessionService(session).revoke(user.id, single(form, "session_id") or "")
            return "revoked"

        return await self._act(request, act)

    async def send_verification(self, request: Request) -> Response:
        async def act(user: User, _form: dict[str, list[str]]) -> str:
            await self._web.accounts.request_verification(user)
            return "verification"

        return await self._act(request, act)

    async def _act(self, request: Request, act: _Action) -> Response:
        try:
            form = await read_form(request)
        except MeshgateError as error:
            return self._web.page(
                request, "message.html", error.http_status, heading="Bad request", message=error.message, error=True
            )
        if not self._web.form_is_genuine(request, form):
            return self._web.refused(request)
        user = await self._web.user(request)
        if user is None:
            return self._to_login()
        try:
            notice = await act(user, form)
        except _Refusal as refusal:
            return await self._page(request, user, error=refusal.message, status=400)
        except MeshgateError as error:
            return await self._page(request, user, error=f"{error.message}.", status=error.http_status)
        return RedirectResponse(f"{self._web.base}/app/account?notice={notice}", status_code=303)

    async def _page(
        self, request: Request, user: User, *, notice: str | None = None, error: str | None = None, status: int = 200
    ) -> Response:
        async with self._web.runtime.db.transaction() as session:
            sessions = await BrowserSessionService(session).list(user.id, request.cookies.get(SESSION_COOKIE))
            visit = await self._visit(session, user, request.query_params.get("org"))
        context = {
            "user": user,
            "sessions": sessions,
            "account_notice": notice,
            "error": error,
            "min_password": MIN_PASSWORD,
            "can_mail": self._web.accounts.can_mail,
        }
        if visit is None:  # in no organization: the plain layout, without the dashboard's navigation
            return self._web.page(request, "account.html", status, layout="base.html", **context)
        return self._dashboard.page(
            request, visit, "account.html", status, layout="dashboard/layout.html", section="account", **context
        )

    async def _visit(self, session: AsyncSession, user: User, slug: str | None) -> Visit | None:
        """The account page is the person's, not an organization's: it shows the navigation of the
        organization named by `?org=` (when they belong to it), else of their first one."""
        organizations = await OrganizationService(session).list_for_user(user.id)
        current = next((org for org in organizations if org.slug == slug), organizations[0] if organizations else None)
        if current is None:
            return None
        principal = await member_principal(session, user.id, current.slug)
        return Visit(user, principal, current, organizations, f"{self._web.base}/app/{current.slug}")

    def _to_login(self) -> Response:
        return RedirectResponse(f"{self._web.base}/login?next={self._web.base}/app/account", status_code=303)


class _Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
