"""`/invite/{token}`: join an organization from an invitation link, logged in or with a new account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.errors import MeshgateError
from meshgate.http.forms import read_form, single
from meshgate.http.web import Web
from meshgate.identity.models import Invitation, Organization, User
from meshgate.identity.passwords import MIN_PASSWORD
from meshgate.identity.service import accept_as_new_account, accept_invitation, open_invitation
from meshgate.identity.sessions import BrowserSessionService


class InvitationPages:
    def __init__(self, web: Web) -> None:
        self._web = web

    def routes(self) -> list[Route]:
        return [
            Route("/invite/{token}", self.show, methods=["GET"]),
            Route("/invite/{token}", self.join, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        user = await self._web.user(request)
        try:
            async with self._web.runtime.db.transaction() as session:
                invitation, organization = await open_invitation(session, token, self._web.runtime.now)
        except MeshgateError as error:
            return self._problem(request, error)
        return self._page(request, invitation, organization, user)

    async def join(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        form: dict[str, list[str]] = {}
        try:
            form = await read_form(request)
            if not self._web.form_is_genuine(request, form):
                return self._web.refused(request)
            user = await self._web.user(request)
            async with self._web.runtime.db.transaction() as session:
                _invitation, organization = await open_invitation(session, token, self._web.runtime.now)
            session_value: str | None = None
            if user is None:
                # Hashed before the transaction, off the event loop, and only for a link that is valid.
                password_hash = await self._web.passwords.hash(single(form, "password") or "")
                async with self._web.runtime.db.transaction() as session:
                    user, _member = await accept_as_new_account(
                        session, token, single(form, "email"), password_hash, self._web.runtime.now
                    )
                    sessions = BrowserSessionService(session)
                    session_value = await sessions.start(user.id, self._web.runtime.settings.session_seconds)
            else:
                async with self._web.runtime.db.transaction() as session:
                    await accept_invitation(session, token, user, self._web.runtime.now)
        except MeshgateError as error:
            return await self._refused_join(request, token, error, "".join(form.get("email", []))[:320])
        target = f"{self._web.base}/app/{organization.slug}/connections?notice=joined"
        response = RedirectResponse(target, status_code=303)
        if session_value is not None:
            self._web.set_session(response, session_value)
        return response

    async def _refused_join(self, request: Request, token: str, error: MeshgateError, email: str) -> Response:
        try:
            async with self._web.runtime.db.transaction() as session:
                invitation, organization = await open_invitation(session, token, self._web.runtime.now)
        except MeshgateError as gone:
            return self._problem(request, gone)
        user = await self._web.user(request)
        return self._page(
            request, invitation, organization, user, error=error.message, status=error.http_status, email=email
        )

    def _page(
        self,
        request: Request,
        invitation: Invitation,
        organization: Organization,
        user: User | None,
        *,
        error: str | None = None,
        status: int = 200,
        email: str = "",
    ) -> Response:
        return self._web.page(
            request,
            "invitation.html",
            status,
            invitation=invitation,
            organization=organization,
            user=user,
            error=error,
            email=email,
            token=str(request.path_params["token"]),
            min_password=MIN_PASSWORD,
        )

    def _problem(self, request: Request, error: MeshgateError) -> Response:
        return self._web.page(
            request, "message.html", error.http_status, heading="Invitation", message=error.message, error=True
        )
