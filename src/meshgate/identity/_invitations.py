"""Invitation links: a random token (stored as SHA-256) that adds the person who opens it to an organization.

A link is used once and names a role. It may be bound:
- to nobody: whoever holds the link joins (with an existing account or a new one);
- to an email address: a new account with that address, or an existing account whose owner proved the
  address (`User.email_verified`); an unproved account with that address cannot take it;
- to one existing user (`ORGANIZATION_MEMBER_ADD` by user id): only that user, logged in.
An account created from a link shown to the inviter keeps an unverified address: holding such a link proves
nothing about a mailbox. A link that was mailed to the address (`emailed_at`) and shown to nobody does prove
it, so a new account made from it starts verified; an existing account must still have proved its address.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import invitations, organizations
from meshgate.email_address import clean_email
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.identity import _rows
from meshgate.identity._api_keys import hash_key
from meshgate.identity._members import MemberService
from meshgate.identity._users import UserService
from meshgate.identity.models import Invitation, Member, Organization, User

TOKEN_PREFIX = "mgi_"  # noqa: S105  (a visible prefix that says what the token is, not a secret)
DEFAULT_SECONDS = 7 * 24 * 3600
MIN_SECONDS = 300
MAX_SECONDS = 30 * 24 * 3600
MAX_PENDING = 1000
RESEND_SECONDS = 60


class InvitationService:
    """Creates, lists and withdraws the invitations of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str, clock: Callable[[], datetime] = utc_now) -> None:
        self._session = session
        self._org = organization_id
        self._clock = clock

    async def create(
        self,
        role: str,
        created_by: str,
        *,
        email: str | None = None,
        user_id: str | None = None,
        expires_in: int | None = None,
        emailed: bool = False,
    ) -> tuple[Invitation, str]:
        """A new invitation and its token; the token is not stored and cannot be shown again.

        `emailed`: the caller mails the token to `email` and shows it to nobody."""
        if email is not None and user_id is not None:
            raise InvalidInput("an invitation is for an email address or for a user id, not both")
        if emailed and email is None:
            raise InvalidInput("an invitation sent by email needs the email address")
        await MemberService(self._session, self._org).require_role(role)
        seconds = DEFAULT_SECONDS if expires_in is None else expires_in
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise InvalidInput(f"expiresIn must be between {MIN_SECONDS} and {MAX_SECONDS} seconds")
        address = None if email is None else clean_email(email)
        pending = await self._session.scalar(
            select(func.count()).select_from(invitations).where(invitations.c.organization_id == self._org)
        )
        if int(pending or 0) >= MAX_PENDING:
            raise Conflict(f"an organization can have at most {MAX_PENDING} open invitations; withdraw old ones")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        invitation = Invitation(
            id=new_id(),
            organization_id=self._org,
            role=role,
            email=address,
            user_id=user_id,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
            emailed_at=now if emailed else None,
        )
        await self._session.execute(
            insert(invitations).values(
                id=invitation.id,
                organization_id=self._org,
                role=role,
                email=address,
                user_id=user_id,
                token_hash=hash_key(token),
                created_by=created_by,
                created_at=now,
                expires_at=invitation.expires_at,
                emailed_at=invitation.emailed_at,
            )
        )
        return invitation, token

    async def renew_for_mail(self, invitation_id: str) -> tuple[Invitation, str]:
        """A new token for an open invitation with an address, to mail to it: the old link stops working and
        the expiry stays. Refused within `RESEND_SECONDS` of the last mail (a mailbox is not a target)."""
        invitation = await self.get(invitation_id)
        if invitation.email is None:
            raise InvalidInput(
                "this invitation names no email address, so it cannot be sent by mail; withdraw it and invite "
                "the person by email"
            )
        now = self._clock()
        if invitation.emailed_at is not None and now < invitation.emailed_at + timedelta(seconds=RESEND_SECONDS):
            wait = (invitation.emailed_at + timedelta(seconds=RESEND_SECONDS) - now).total_seconds()
            raise Conflict(f"this invitation was mailed moments ago; it can be sent again in {max(1, round(wait))} s")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._session.execute(
            update(invitations)
            .where(invitations.c.id == invitation.id)
            .values(token_hash=hash_key(token), emailed_at=now)
        )
        return replace(invitation, emailed_at=now), token

    async def get(self, invitation_id: str) -> Invitation:
        """An open invitation of this organization (an expired one is not found)."""
        row = (
            await self._session.execute(
                select(invitations).where(invitations.c.organization_id == self._org, invitations.c.id == invitation_id)
            )
        ).first()
        if row is None or row.expires_at <= self._clock():
            raise NotFound(f"invitation {invitation_id} not found (it may have been accepted, withdrawn or expired)")
        return _invitation(row)

    async def list(self) -> list[Invitation]:
        """Open invitations, newest first (expired ones are removed on the way)."""
        expired = (invitations.c.organization_id == self._org) & (invitations.c.expires_at <= self._clock())
        await self._session.execute(delete(invitations).where(expired))
        rows = await self._session.execute(
            select(invitations)
            .where(invitations.c.organization_id == self._org)
            .order_by(invitations.c.created_at.desc(), invitations.c.id)
        )
        return [_invitation(row) for row in rows]

    async def delete(self, invitation_id: str) -> Invitation:
        row = (
            await self._session.execute(
                select(invitations).where(invitations.c.organization_id == self._org, invitations.c.id == invitation_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"invitation {invitation_id} not found")
        await self._session.execute(delete(invitations).where(invitations.c.id == invitation_id))
        return _invitation(row)


async def open_invitation(
    session: AsyncSession, token: str, clock: Callable[[], datetime] = utc_now
) -> tuple[Invitation, Organization]:
    """The invitation a token belongs to and its organization, while it lasts."""
    query = select(invitations).where(invitations.c.token_hash == hash_key(token))
    row = (await session.execute(query)).first() if len(token) <= 100 else None
    if row is None or clock() >= row.expires_at:
        raise NotFound("this invitation link is not valid: it was used, withdrawn or has expired")
    organization = (
        await session.execute(select(organizations).where(organizations.c.id == row.organization_id))
    ).first()
    assert organization is not None  # noqa: S101  (the foreign key keeps it while the invitation exists)
    return _invitation(row), _rows.organization(organization)


async def accept_invitation(
    session: AsyncSession, token: str, user: User, clock: Callable[[], datetime] = utc_now
) -> Member:
    """Add the logged-in `user` to the invitation's organization with its role; the link is used up."""
    invitation, _organization = await open_invitation(session, token, clock)
    if invitation.user_id is not None and invitation.user_id != user.id:
        raise PermissionDenied("this invitation is for another account; log in with the account it was made for")
    if invitation.email is not None:
        if invitation.email != user.email:
            raise PermissionDenied(f"this invitation is for {invitation.email}; log in with that address")
        if not user.email_verified:
            raise PermissionDenied(
                f"this invitation is for {invitation.email}, and this account has not yet proved that the "
                "address is its own; once it is verified, open the link again"
            )
    return await _join(session, invitation, user)


async def accept_as_new_account(
    session: AsyncSession,
    token: str,
    email: str | None,
    password_hash: str,
    clock: Callable[[], datetime] = utc_now,
) -> tuple[User, Member]:
    """Create an account from the link and join with it. Its address stays unverified."""
    invitation, _organization = await open_invitation(session, token, clock)
    if invitation.user_id is not None:
        raise PermissionDenied("this invitation is for an existing account: log in first, then open the link")
    users = UserService(session)
    address = clean_email(invitation.email or email or "")
    if await users.find_by_email(address) is not None:
        raise Conflict("an account with this email exists already: log in first, then open the link")
    # A mailed link that nobody else saw proves the address it went to.
    proved = invitation.emailed_at is not None and invitation.email == address
    user = await users.create(address, password_hash=password_hash, verified=proved)
    return user, await _join(session, invitation, user)


async def _join(session: AsyncSession, invitation: Invitation, user: User) -> Member:
    members = MemberService(session, invitation.organization_id)
    if await members.find_by_user(user.id) is not None:
        raise Conflict("you are already a member of this organization")
    member = await members.add(user.id, invitation.role)
    await session.execute(delete(invitations).where(invitations.c.id == invitation.id))
    return member


def _invitation(row: Row[Any]) -> Invitation:
    return Invitation(
        id=row.id,
        organization_id=row.organization_id,
        role=row.role,
        email=row.email,
        user_id=row.user_id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        emailed_at=row.emailed_at,
    )
