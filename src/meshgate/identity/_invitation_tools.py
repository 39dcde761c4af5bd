"""INVITATION_* management tools: links that add a person to the organization with a role.

INVITATION_CREATE always answers with the link (to pass on by hand); ORGANIZATION_MEMBER_ADD with an
email mails it when a provider serves `invite` mail; INVITATION_RESEND mails a fresh link."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.errors import InvalidInput
from meshgate.identity import _policy
from meshgate.identity.invitation_mail import InvitationMailer
from meshgate.identity.service import InvitationService
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec


class InvitationCreateInput(ToolInput):
    role: str = Field(description="owner, admin, member or the name of a custom role", max_length=64)
    email: str | None = Field(None, description="Only this address may accept (any, when absent)", max_length=320)
    expiresIn: int | None = Field(  # noqa: N815  (camelCase like API_KEY_CREATE)
        None, description="Lifetime in seconds, 300 to 2592000 (30 days); default 7 days"
    )


class InvitationIdInput(ToolInput):
    invitationId: str = Field(description="Invitation id (from INVITATION_LIST)", max_length=36)  # noqa: N815


class NoInput(ToolInput):
    pass


def invitation_url(ctx: ToolContext, token: str) -> str:
    """The link a person opens to accept; it is in this answer only."""
    return f"{ctx.runtime.settings.public_url}/invite/{token}"


async def invitation_create(ctx: ToolContext, args: InvitationCreateInput) -> Any:
    await _policy.require_may_grant_role(ctx.session, ctx.principal, args.role)
    service = InvitationService(ctx.session, ctx.principal.organization_id, ctx.runtime.now)
    invitation, token = await service.create(
        args.role, ctx.principal.user_id, email=args.email, expires_in=args.expiresIn
    )
    return {**invitation.to_dict(), "url": invitation_url(ctx, token)}


async def invitation_list(ctx: ToolContext, _args: NoInput) -> Any:
    service = InvitationService(ctx.session, ctx.principal.organization_id, ctx.runtime.now)
    return {"items": [invitation.to_dict() for invitation in await service.list()]}


async def invitation_delete(ctx: ToolContext, args: InvitationIdInput) -> Any:
    service = InvitationService(ctx.session, ctx.principal.organization_id, ctx.runtime.now)
    return {**(await service.delete(args.invitationId)).to_dict(), "deleted": True}


async def invitation_resend(ctx: ToolContext, args: InvitationIdInput) -> Any:
    runtime = ctx.runtime
    invitation = await InvitationService(ctx.session, ctx.principal.organization_id, runtime.now).get(args.invitationId)
    await _policy.require_may_grant_role(ctx.session, ctx.principal, invitation.role)
    mailer = InvitationMailer(
        ctx.session, ctx.principal.organization_id, runtime.outbox, runtime.settings.public_url, runtime.now
    )
    if not mailer.can_send:
        raise InvalidInput("this gateway has no email provider for invitations, so it cannot send one")
    return {**(await mailer.resend(args.invitationId)).to_dict(), "resent": True}


INVITATION_TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "INVITATION_CREATE",
        "Create a one-time link that adds whoever opens it to the organization; the link is shown only now.",
        InvitationCreateInput,
        invitation_create,
    ),
    ToolSpec("INVITATION_LIST", "List open invitations (never their links).", NoInput, invitation_list, read_only=True),
    ToolSpec(
        "INVITATION_DELETE", "Withdraw an invitation; its link stops working.", InvitationIdInput, invitation_delete
    ),
    ToolSpec(
        "INVITATION_RESEND",
        "Mail a new link for an open invitation to its address; the previous link stops working and the"
        " expiry stays. At most once a minute per invitation.",
        InvitationIdInput,
        invitation_resend,
    ),
]
