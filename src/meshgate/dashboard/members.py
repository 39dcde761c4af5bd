"""Members and roles: add members, change or take away roles, custom roles with a permission picker."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.dashboard._permissions import checked, describe, map_from_form, picker_rows
from meshgate.errors import MeshgateError
from meshgate.identity.models import BUILTIN_ROLES
from meshgate.jsonvalues import as_dict, as_list

INVITE_EXPIRY = (("86400", "1 day"), ("604800", "7 days"), ("2592000", "30 days"))


class MemberPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/members", d.view(self.index), methods=["GET"]),
            Route("/app/{org}/members", d.action(self.add), methods=["POST"]),
            Route("/app/{org}/members/{id}/role", d.action(self.change_role), methods=["POST"]),
            Route("/app/{org}/members/{id}/remove", d.action(self.remove), methods=["POST"]),
            Route("/app/{org}/invitations", d.action(self.invite), methods=["POST"]),
            Route("/app/{org}/invitations/{id}/withdraw", d.action(self.withdraw), methods=["POST"]),
            Route("/app/{org}/invitations/{id}/resend", d.action(self.resend), methods=["POST"]),
            Route("/app/{org}/roles", d.view(self.roles), methods=["GET"]),
            Route("/app/{org}/roles", d.action(self.create_role), methods=["POST"]),
            Route("/app/{org}/roles/{id}", d.view(self.role), methods=["GET"]),
            Route("/app/{org}/roles/{id}", d.action(self.update_role), methods=["POST"]),
            Route("/app/{org}/roles/{id}/delete", d.action(self.delete_role), methods=["POST"]),
        ]

    # --- members ---------------------------------------------------------------------------------------

    async def index(self, request: Request, visit: Visit) -> Response:
        """Members and invitations, and once, right after `add` or `invite`, the new invitation's link."""
        return await self._d.showing_once(
            request, visit, "/members", lambda invited: self.members(request, visit, invited=invited)
        )

    async def members(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        listed = await self._d.tool(visit, "ORGANIZATION_MEMBER_LIST")
        invitations: list[dict[str, Any]] = []
        if visit.can("INVITATION_LIST"):
            invitations = [as_dict(i) for i in as_list((await self._d.tool(visit, "INVITATION_LIST"))["items"])]
        return self._d.page(
            request,
            visit,
            "dashboard/members.html",
            status,
            section="members",
            members=[as_dict(m) for m in as_list(listed["items"])],
            role_names=await self._role_names(visit),
            visitor_is_owner=visit.principal.role == "owner",
            invitations=invitations,
            invite_expiry=INVITE_EXPIRY,
            invitations_by_mail=self._d.runtime.outbox.can_send("invite"),
            **context,
        )

    async def add(self, request: Request, visit: Visit, form: Form) -> Response:
        """An invitation for that address: its link is shown once, like one made below."""
        try:
            invited = await self._d.tool(
                visit, "ORGANIZATION_MEMBER_ADD", {"email": field(form, "email"), "role": field(form, "role")}
            )
        except MeshgateError as error:
            return await self.members(
                request, visit, error.http_status, error=error.message, email=field(form, "email")
            )
        if "url" not in invited:  # mailed to the address: nobody else sees the link
            return self._d.back(visit, "/members", "invitation-sent")
        return await self._show_invitation(request, visit, invited)

    async def change_role(self, request: Request, visit: Visit, form: Form) -> Response:
        member_id = str(request.path_params["id"])
        try:
            await self._d.tool(
                visit, "ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": member_id, "role": field(form, "role")}
            )
        except MeshgateError as error:
            return await self.members(request, visit, error.http_status, row_error=(member_id, error.message))
        return self._d.back(visit, "/members", "member-updated")

    async def remove(self, request: Request, visit: Visit, _form: Form) -> Response:
        member_id = str(request.path_params["id"])
        try:
            await self._d.tool(visit, "ORGANIZATION_MEMBER_REMOVE", {"memberId": member_id})
        except MeshgateError as error:
            return await self.members(request, visit, error.http_status, row_error=(member_id, error.message))
        return self._d.back(visit, "/members", "member-removed")

    async def invite(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments: dict[str, Any] = {"role": field(form, "role"), "email": optional(form, "email")}
        if field(form, "expires").isdigit():
            arguments["expiresIn"] = int(field(form, "expires"))
        try:
            created = await self._d.tool(visit, "INVITATION_CREATE", arguments)
        except MeshgateError as error:
            return await self.members(request, visit, error.http_status, invite_error=error.message)
        return await self._show_invitation(request, visit, created)

    async def _show_invitation(self, request: Request, visit: Visit, invitation: dict[str, Any]) -> Response:
        shown = {
            "role": str(invitation["role"]),
            "email": str(invitation.get("email") or ""),
            "url": str(invitation["url"]),
        }
        return self._d.back_showing(visit, "/members", shown) or await self.members(request, visit, invited=shown)

    async def resend(self, request: Request, visit: Visit, _form: Form) -> Response:
        try:
            await self._d.tool(visit, "INVITATION_RESEND", {"invitationId": str(request.path_params["id"])})
        except MeshgateError as error:
            return await self.members(request, visit, error.http_status, invite_error=error.message)
        return self._d.back(visit, "/members", "invitation-resent")

    async def withdraw(self, request: Request, visit: Visit, _form: Form) -> Response:
        await self._d.tool(visit, "INVITATION_DELETE", {"invitationId": str(request.path_params["id"])})
        return self._d.back(visit, "/members", "invitation-withdrawn")

    async def _role_names(self, visit: Visit) -> list[str]:
        """The roles the visitor may give. Only owners hand out or take away `owner` (the member service refuses
        anyone else), so an admin is offered no `owner` choice and no control on an owner's row."""
        custom: list[str] = []
        if visit.can("ROLE_LIST"):
            custom = [str(as_dict(r)["name"]) for r in as_list((await self._d.tool(visit, "ROLE_LIST"))["items"])]
        builtin = [r for r in BUILTIN_ROLES if r != "owner" or visit.principal.role == "owner"]
        return [*builtin, *custom]

    # --- roles -----------------------------------------------------------------------------------------

    async def roles(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        roles = [as_dict(r) for r in as_list((await self._d.tool(visit, "ROLE_LIST"))["items"])]
        connections = await self._connections(visit)
        names = {str(c["id"]): str(c["title"]) for c in connections}
        return self._d.page(
            request,
            visit,
            "dashboard/roles.html",
            status,
            section="roles",
            roles=roles,
            summaries={r["id"]: describe(r.get("permissions"), names) for r in roles},
            rows=picker_rows(self._d.registry, connections),
            checked=context.pop("checked", set[str]()),
            editing=context.pop("editing", None),
            values=context.pop("values", {}),
            **context,
        )

    async def role(self, request: Request, visit: Visit) -> Response:
        roles = [as_dict(r) for r in as_list((await self._d.tool(visit, "ROLE_LIST"))["items"])]
        found = next((r for r in roles if r["id"] == request.path_params["id"]), None)
        if found is None:
            return self._d.back(visit, "/roles")
        return await self.roles(request, visit, editing=found, checked=checked(found.get("permissions")), values=found)

    async def create_role(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments = {
            "name": field(form, "name"),
            "description": optional(form, "description"),
            "permissions": map_from_form(form),
        }
        try:
            await self._d.tool(visit, "ROLE_CREATE", arguments)
        except MeshgateError as error:
            values = {"name": arguments["name"], "description": arguments["description"]}
            return await self.roles(
                request, visit, error.http_status, error=error.message, checked=set(form.get("perm", [])), values=values
            )
        return self._d.back(visit, "/roles", "role-saved")

    async def update_role(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments = {
            "roleId": str(request.path_params["id"]),
            "name": field(form, "name"),
            "description": optional(form, "description"),
            "permissions": map_from_form(form),
        }
        try:
            await self._d.tool(visit, "ROLE_UPDATE", arguments)
        except MeshgateError as error:
            values = {"id": arguments["roleId"], "name": arguments["name"], "description": arguments["description"]}
            return await self.roles(
                request,
                visit,
                error.http_status,
                error=error.message,
                checked=set(form.get("perm", [])),
                values=values,
                editing=values,
            )
        return self._d.back(visit, "/roles", "role-saved")

    async def delete_role(self, request: Request, visit: Visit, _form: Form) -> Response:
        try:
            await self._d.tool(visit, "ROLE_DELETE", {"roleId": str(request.path_params["id"])})
        except MeshgateError as error:
            return await self.roles(request, visit, error.http_status, error=error.message)
        return self._d.back(visit, "/roles", "role-deleted")

    async def _connections(self, visit: Visit) -> list[dict[str, Any]]:
        if not visit.can("COLLECTION_CONNECTIONS_LIST"):
            return []
        listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
        return [as_dict(c) for c in as_list(listed["items"])]
