"""Invitations sent by email: the link goes to the invited address only, never into the inviter's answer.

Without an email provider for `invite` mail, `ORGANIZATION_MEMBER_ADD` answers with the link as before,
for the inviter to pass on. The mail is queued inside the inviting transaction: if that transaction fails
afterwards, the person receives a link that does not work, and the inviter sees the failure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import utc_now
from meshgate.identity._invitations import InvitationService
from meshgate.identity._organizations import OrganizationService
from meshgate.identity._users import UserService
from meshgate.identity.models import Invitation
from meshgate.mail.outbox import Outbox, compose

PURPOSE = "invite"


class InvitationMailer:
    """Creates and resends the invitations of one organization that travel by mail."""

    def __init__(
        self,
        session: AsyncSession,
        organization_id: str,
        outbox: Outbox,
        public_url: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session = session
        self._org = organization_id
        self._outbox = outbox
        self._public_url = public_url
        self._invitations = InvitationService(session, organization_id, clock)

    @property
    def can_send(self) -> bool:
        return self._outbox.can_send(PURPOSE)

    async def invite(self, email: str, role: str, created_by: str) -> Invitation:
        """A new invitation for `email`, mailed to it."""
        invitation, token = await self._invitations.create(role, created_by, email=email, emailed=True)
        await self._mail(invitation, token)
        return invitation

    async def resend(self, invitation_id: str) -> Invitation:
        """Mail a new link for an open invitation; the previous link (mailed or shown) stops working."""
        invitation, token = await self._invitations.renew_for_mail(invitation_id)
        await self._mail(invitation, token)
        return invitation

    async def _mail(self, invitation: Invitation, token: str) -> None:
        assert invitation.email is not None  # noqa: S101  (both callers checked it)
        organization = await OrganizationService(self._session).get(self._org)
        inviter = None if invitation.created_by is None else await UserService(self._session).get(invitation.created_by)
        context = {
            "link": f"{self._public_url}/invite/{token}",
            "organization": organization.name,
            "role": invitation.role,
            "inviter": inviter.email if inviter is not None else "Someone",
            "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M"),
        }
        self._outbox.send(compose("invitation", invitation.email, context))
