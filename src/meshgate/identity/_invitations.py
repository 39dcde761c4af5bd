"""Invitation links: a random token (stored as SHA-256) that adds the person who opens it to an organization.

A link is used once; it names a role and, optionally, the one email address that may use it."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import invitations, organizations
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.identity import _rows
from meshgate.identity._api_keys import hash_key
from meshgate.identity._members import MemberService
from meshgate.identity.models import Invitation, Member, Organization, User
from meshgate.identity.validation import clean_email

TOKEN_PREFIX = "mgi_"  # noqa: S105  (a visible prefix that says what the token is, not a secret)
DEFAULT_SECONDS = 7 * 24 * 3600
MIN_SECONDS = 300
MAX_SECONDS = 30 * 24 * 3600
MAX_PENDING = 1000


class InvitationService:
    """Creates, lists and withdraws the invitations of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def create(
        self, role: str, created_by: str, *, email: str | None = None, expires_in: int | None = None
    ) -> tuple[Invitation, str]:
        """A new invitation and its token; the token is not stored and cannot be shown again."""
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
        now = utc_now()
        invitation = Invitation(
            id=new_id(),
            organization_id=self._org,
            role=role,
            email=address,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
        )
        await self._session.execute(
            insert(invitations).values(
                id=invitation.id,
                organization_id=self._org,
                role=role,
                email=address,
                token_hash=hash_key(token),
                created_by=created_by,
                created_at=now,
                expires_at=invitation.expires_at,
            )
        )
        return invitation, token

    async def list(self) -> list[Invitation]:
        """Open invitations, newest first (expired ones are removed on the way)."""
        expired = (invitations.c.organization_id == self._org) & (invitations.c.expires_at < utc_now())
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


async def open_invitation(session: AsyncSession, token: str) -> tuple[Invitation, Organization]:
    """The invitation a token belongs to and its organization, while it lasts."""
    query = select(invitations).where(invitations.c.token_hash == hash_key(token))
    row = (await session.execute(query)).first() if len(token) <= 100 else None
    if row is None or utc_now() >= row.expires_at:
        raise NotFound("this invitation link is not valid: it was used, withdrawn or has expired")
    organization = (
        await session.execute(select(organizations).where(organizations.c.id == row.organization_id))
    ).first()
    assert organization is not None  # noqa: S101  (the foreign key keeps it while the invitation exists)
    return _invitation(row), _rows.organization(organization)


async def accept_invitation(session: AsyncSession, token: str, user: User) -> Member:
    """Add `user` to the invitation's organization with its role; the link is used up."""
    invitation, _organization = await open_invitation(session, token)
    if invitation.email is not None and invitation.email != user.email:
        raise PermissionDenied(f"this invitation is for {invitation.email}; log in with that address")
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
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
