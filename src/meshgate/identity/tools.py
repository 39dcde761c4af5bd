"""Management tools for organizations, members, roles and API keys (names and inputs follow MCP Mesh)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.email_address import clean_email
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.identity import _policy
from meshgate.identity._connection_key_tools import CONNECTION_KEY_TOOLS
from meshgate.identity._invitation_tools import INVITATION_TOOLS, invitation_url
from meshgate.identity._session_tools import SESSION_TOOLS
from meshgate.identity.invitation_mail import InvitationMailer
from meshgate.identity.service import (
    ApiKeyService,
    InvitationService,
    MemberService,
    OrganizationService,
    RoleService,
    UserService,
)
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec

PermissionMapInput = dict[str, list[str]]
_MAP_HELP = 'permission map {resource: [tool | "*"]}; resource is "self", a connection id, a virtual MCP id or "*"'


class NoInput(ToolInput):
    pass


class OrganizationCreateInput(ToolInput):
    name: str = Field(description="Display name, 1-100 characters; the slug is derived from it", max_length=100)
    description: str | None = Field(None, description="Free text, at most 2000 characters", max_length=2000)


class OrganizationIdInput(ToolInput):
    id: str = Field(description="Organization id (only the caller's own organization is visible)", max_length=36)


class OrganizationGetInput(ToolInput):
    id: str | None = Field(None, description="Organization id; defaults to the caller's organization", max_length=36)


class OrganizationUpdateInput(ToolInput):
    id: str = Field(description="Organization id", max_length=36)
    name: str | None = Field(None, description="New display name, 1-100 characters", max_length=100)
    description: str | None = Field(None, description="New description, at most 2000 characters", max_length=2000)


class SettingsUpdateInput(ToolInput):
    member_permissions: PermissionMapInput | None = Field(
        None, description=f"What the built-in member role may do: {_MAP_HELP}"
    )
    ai_keep_prompts: bool | None = Field(
        None, description="Keep the messages of AI calls in the audit log, redacted (off: never kept)"
    )


class MemberAddInput(ToolInput):
    organizationId: str | None = Field(None, description="Organization id; defaults to the caller's", max_length=36)  # noqa: N815  (MCP Mesh's wire name)
    userId: str | None = Field(None, description="Id of an existing user (give this or email)", max_length=36)  # noqa: N815
    email: str | None = Field(
        None, description="Email to invite; only its proved owner (or a new account) can accept", max_length=320
    )
    role: str = Field(description="owner, admin, member or the name of a custom role", max_length=64)


class MemberIdInput(ToolInput):
    memberId: str = Field(description="Member id (from ORGANIZATION_MEMBER_LIST)", max_length=36)  # noqa: N815


class MemberRoleInput(ToolInput):
    memberId: str = Field(description="Member id (from ORGANIZATION_MEMBER_LIST)", max_length=36)  # noqa: N815
    role: str = Field(description="owner, admin, member or the name of a custom role", max_length=64)


class RoleCreateInput(ToolInput):
    name: str = Field(description="1-64 lowercase letters, digits, '-' or '_'; not owner/admin/member", max_length=64)
    description: str | None = Field(None, description="Free text, at most 2000 characters", max_length=2000)
    permissions: PermissionMapInput = Field(description=f"What holders of the role may do: {_MAP_HELP}")


class RoleIdInput(ToolInput):
    roleId: str = Field(description="Role id (from ROLE_LIST)", max_length=36)  # noqa: N815


class RoleUpdateInput(ToolInput):
    roleId: str = Field(description="Role id (from ROLE_LIST)", max_length=36)  # noqa: N815
    name: str | None = Field(None, description="New name; members holding the role keep it", max_length=64)
    description: str | None = Field(None, description="New description", max_length=2000)
    permissions: PermissionMapInput | None = Field(None, description=f"New {_MAP_HELP}")


class ApiKeyCreateInput(ToolInput):
    name: str = Field(description="Label for the key, 1-100 characters", max_length=100)
    permissions: PermissionMapInput | None = Field(
        None, description=f"Narrow the key to this {_MAP_HELP}; absent = what the creating credential may do"
    )
    expiresIn: int | None = Field(None, description="Lifetime in seconds, at least 300; absent = no expiry")  # noqa: N815


class ApiKeyIdInput(ToolInput):
    keyId: str = Field(description="API key id (from API_KEY_LIST)", max_length=36)  # noqa: N815


class ApiKeyUpdateInput(ToolInput):
    keyId: str = Field(description="API key id (from API_KEY_LIST)", max_length=36)  # noqa: N815
    name: str | None = Field(None, description="New label", max_length=100)
    permissions: PermissionMapInput | None = Field(None, description=f"New {_MAP_HELP}")


# --- organizations -------------------------------------------------------------------------------


async def organization_create(ctx: ToolContext, args: OrganizationCreateInput) -> Any:
    org = await OrganizationService(ctx.session).create(args.name, ctx.principal.user_id, description=args.description)
    return org.to_dict()


async def organization_list(ctx: ToolContext, _args: NoInput) -> Any:
    # A credential belongs to one organization; listing the user's other organizations would let a key
    # of one organization detect another.
    org = await OrganizationService(ctx.session).get(ctx.principal.organization_id)
    return {"items": [org.to_dict()]}


async def organization_get(ctx: ToolContext, args: OrganizationGetInput) -> Any:
    org_id = _policy.require_same_org(ctx.principal, args.id)
    return (await OrganizationService(ctx.session).get(org_id)).to_dict()


async def organization_update(ctx: ToolContext, args: OrganizationUpdateInput) -> Any:
    org_id = _policy.require_same_org(ctx.principal, args.id)
    org = await OrganizationService(ctx.session).update(org_id, name=args.name, description=args.description)
    return org.to_dict()


async def organization_delete(ctx: ToolContext, args: OrganizationIdInput) -> Any:
    org_id = _policy.require_same_org(ctx.principal, args.id)
    if ctx.principal.role != "owner":
        raise PermissionDenied("only an owner can delete the organization")
    await OrganizationService(ctx.session).delete(org_id)
    return {"id": org_id, "deleted": True}


async def settings_get(ctx: ToolContext, _args: NoInput) -> Any:
    return await OrganizationService(ctx.session).get_settings(ctx.principal.organization_id)


async def settings_update(ctx: ToolContext, args: SettingsUpdateInput) -> Any:
    changes = args.model_dump(exclude_none=True)
    if "member_permissions" in changes:
        _policy.require_covers(ctx.principal, changes["member_permissions"], "member_permissions")
    return await OrganizationService(ctx.session).update_settings(ctx.principal.organization_id, changes)


# --- members -------------------------------------------------------------------------------------


async def member_add(ctx: ToolContext, args: MemberAddInput) -> Any:
    """An invitation the person accepts, never a membership: the answer is the same whether or not an
    account has the email, and says nothing about the user (review findings 3 and 19)."""
    org_id = _policy.require_same_org(ctx.principal, args.organizationId)
    if (args.userId is None) == (args.email is None):
        raise InvalidInput("give exactly one of userId or email")
    members = MemberService(ctx.session, org_id)
    await members.require_role(args.role)
    await _policy.require_may_grant_role(ctx.session, ctx.principal, args.role)
    if args.userId is not None:
        user = await UserService(ctx.session).get(args.userId)
        if user is None:
            raise InvalidInput(f"no user with id {args.userId}")
        already = await members.find_by_user(user.id)
    else:
        address = clean_email(args.email or "")
        already = next((m for m in await members.list() if m.email == address), None)
    if already is not None:
        raise Conflict(f"that user is already a member of this organization (member {already.id})")
    runtime = ctx.runtime
    mailer = InvitationMailer(ctx.session, org_id, runtime.outbox, runtime.settings.public_url, runtime.now)
    if args.email is not None and mailer.can_send:
        # The link goes to the address only: the inviter never holds it, so a new account made from it is proved.
        invitation = await mailer.invite(args.email, args.role, ctx.principal.user_id)
        return {**invitation.to_dict(), "status": "invited"}
    invitation, token = await InvitationService(ctx.session, org_id, runtime.now).create(
        args.role, ctx.principal.user_id, email=args.email, user_id=args.userId
    )
    return {**invitation.to_dict(), "status": "invited", "url": invitation_url(ctx, token)}


async def member_remove(ctx: ToolContext, args: MemberIdInput) -> Any:
    members = MemberService(ctx.session, ctx.principal.organization_id)
    member = await members.get(args.memberId)
    await _policy.require_may_grant_role(ctx.session, ctx.principal, member.role)
    return (await members.remove(args.memberId)).to_dict()


async def member_list(ctx: ToolContext, _args: NoInput) -> Any:
    return {"items": [m.to_dict() for m in await MemberService(ctx.session, ctx.principal.organization_id).list()]}


async def member_update_role(ctx: ToolContext, args: MemberRoleInput) -> Any:
    members = MemberService(ctx.session, ctx.principal.organization_id)
    member = await members.get(args.memberId)
    await members.require_role(args.role)
    await _policy.require_may_grant_role(ctx.session, ctx.principal, member.role)
    await _policy.require_may_grant_role(ctx.session, ctx.principal, args.role)
    return (await members.update_role(args.memberId, args.role)).to_dict()


# --- roles ---------------------------------------------------------------------------------------


async def role_create(ctx: ToolContext, args: RoleCreateInput) -> Any:
    _policy.require_covers(ctx.principal, args.permissions, "the role")
    roles = RoleService(ctx.session, ctx.principal.organization_id)
    return (await roles.create(args.name, args.permissions, description=args.description)).to_dict()


async def role_list(ctx: ToolContext, _args: NoInput) -> Any:
    return {"items": [r.to_dict() for r in await RoleService(ctx.session, ctx.principal.organization_id).list()]}


async def role_update(ctx: ToolContext, args: RoleUpdateInput) -> Any:
    roles = RoleService(ctx.session, ctx.principal.organization_id)
    current = await roles.get(args.roleId)
    _policy.require_covers(ctx.principal, current.permissions, "changing this role")
    if args.permissions is not None:
        _policy.require_covers(ctx.principal, args.permissions, "the role")
    role = await roles.update(args.roleId, name=args.name, description=args.description, permissions=args.permissions)
    return role.to_dict()


async def role_delete(ctx: ToolContext, args: RoleIdInput) -> Any:
    roles = RoleService(ctx.session, ctx.principal.organization_id)
    _policy.require_covers(ctx.principal, (await roles.get(args.roleId)).permissions, "deleting this role")
    return (await roles.delete(args.roleId)).to_dict()


# --- API keys ------------------------------------------------------------------------------------


def _visible_owner(ctx: ToolContext) -> str | None:
    """Owners and admins manage every key of the organization; others only their own."""
    return None if ctx.principal.is_admin else ctx.principal.user_id


async def api_key_create(ctx: ToolContext, args: ApiKeyCreateInput) -> Any:
    permissions: Any = args.permissions
    if permissions is None:
        # Without an explicit map the new key inherits the creating credential's own narrowing,
        # so a narrow key cannot mint a broad one.
        narrowing = ctx.principal.grants[1:]
        permissions = dict(narrowing[0]) if narrowing else None
    else:
        _policy.require_covers(ctx.principal, permissions, "the key")
    keys = ApiKeyService(ctx.session, ctx.principal.organization_id)
    key, value = await keys.create(
        ctx.principal.user_id,
        args.name,
        permissions=permissions,
        expires_in=args.expiresIn,
        grant_id=ctx.principal.grant_id,
        created_by_key=ctx.principal.api_key_id,
    )
    return {**key.to_dict(), "key": value}


async def api_key_list(ctx: ToolContext, _args: NoInput) -> Any:
    keys = ApiKeyService(ctx.session, ctx.principal.organization_id)
    return {"items": [k.to_dict() for k in await keys.list(user_id=_visible_owner(ctx))]}


async def _own_key(ctx: ToolContext, key_id: str) -> ApiKeyService:
    keys = ApiKeyService(ctx.session, ctx.principal.organization_id)
    key = await keys.get(key_id)
    owner = _visible_owner(ctx)
    if owner is not None and key.user_id != owner:
        raise NotFound(f"API key {key_id} not found")
    return keys


async def api_key_update(ctx: ToolContext, args: ApiKeyUpdateInput) -> Any:
    keys = await _own_key(ctx, args.keyId)
    if args.permissions is not None:
        _policy.require_covers(ctx.principal, args.permissions, "the key")
    return (await keys.update(args.keyId, name=args.name, permissions=args.permissions)).to_dict()


async def api_key_delete(ctx: ToolContext, args: ApiKeyIdInput) -> Any:
    keys = await _own_key(ctx, args.keyId)
    return {**(await keys.delete(args.keyId)).to_dict(), "deleted": True}


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "ORGANIZATION_CREATE",
        "Create an organization with you as its owner.",
        OrganizationCreateInput,
        organization_create,
    ),
    ToolSpec(
        "ORGANIZATION_LIST",
        "List the organization this credential belongs to.",
        NoInput,
        organization_list,
        read_only=True,
    ),
    ToolSpec(
        "ORGANIZATION_GET",
        "Get an organization by id (default: your own).",
        OrganizationGetInput,
        organization_get,
        read_only=True,
    ),
    ToolSpec(
        "ORGANIZATION_UPDATE",
        "Change an organization's name or description.",
        OrganizationUpdateInput,
        organization_update,
    ),
    ToolSpec(
        "ORGANIZATION_DELETE",
        "Delete the organization and everything in it (owners only).",
        OrganizationIdInput,
        organization_delete,
    ),
    ToolSpec("ORGANIZATION_SETTINGS_GET", "Read the organization's settings.", NoInput, settings_get, read_only=True),
    ToolSpec(
        "ORGANIZATION_SETTINGS_UPDATE", "Change the organization's settings.", SettingsUpdateInput, settings_update
    ),
    ToolSpec(
        "ORGANIZATION_MEMBER_ADD",
        "Invite a person (by user id or email) with a role: they join when they open the link and accept."
        " With an email and a mail provider the link is mailed to that address only (no url in the answer);"
        " otherwise the answer has the link to pass on. The answer is the same whether or not the email"
        " has an account.",
        MemberAddInput,
        member_add,
    ),
    ToolSpec("ORGANIZATION_MEMBER_REMOVE", "Remove a member from the organization.", MemberIdInput, member_remove),
    ToolSpec(
        "ORGANIZATION_MEMBER_LIST",
        "List the organization's members and their roles.",
        NoInput,
        member_list,
        read_only=True,
    ),
    ToolSpec("ORGANIZATION_MEMBER_UPDATE_ROLE", "Change a member's role.", MemberRoleInput, member_update_role),
    ToolSpec("ROLE_CREATE", "Create a custom role with a permission map.", RoleCreateInput, role_create),
    ToolSpec("ROLE_LIST", "List the organization's custom roles.", NoInput, role_list, read_only=True),
    ToolSpec("ROLE_UPDATE", "Change a custom role's name, description or permissions.", RoleUpdateInput, role_update),
    ToolSpec("ROLE_DELETE", "Delete a custom role that no member holds.", RoleIdInput, role_delete),
    ToolSpec(
        "API_KEY_CREATE",
        "Create an API key; its value is shown only in this answer.",
        ApiKeyCreateInput,
        api_key_create,
    ),
    ToolSpec("API_KEY_LIST", "List API keys (never their values).", NoInput, api_key_list, read_only=True),
    ToolSpec("API_KEY_UPDATE", "Rename an API key or change its permissions.", ApiKeyUpdateInput, api_key_update),
    ToolSpec(
        "API_KEY_DELETE", "Delete an API key; it stops working on its next request.", ApiKeyIdInput, api_key_delete
    ),
    *INVITATION_TOOLS,
    *CONNECTION_KEY_TOOLS,
    *SESSION_TOOLS,
]
