"""Invitations and browser sessions expire on the services' clock: no test waits for real time to pass."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from meshgate.db.database import Database
from meshgate.db.rows import utc_now
from meshgate.errors import NotFound
from meshgate.identity.service import InvitationService, OrganizationService, UserService, open_invitation
from meshgate.identity.sessions import BrowserSessionService

pytestmark = pytest.mark.anyio


class Clock:
    """A UTC time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


async def test_an_invitation_works_until_it_expires_and_then_leaves_the_list(db: Database) -> None:
    clock = Clock()
    async with db.transaction() as session:
        owner = await UserService(session).create("owner@example.com", verified=True)
        org = await OrganizationService(session).create("Expiry", owner.id)
        invitation, token = await InvitationService(session, org.id, clock).create("member", owner.id, expires_in=3600)
    clock.now += timedelta(seconds=3599)
    async with db.transaction() as session:
        assert (await open_invitation(session, token, clock))[0].id == invitation.id
        assert [i.id for i in await InvitationService(session, org.id, clock).list()] == [invitation.id]
    clock.now += timedelta(seconds=1)
    async with db.transaction() as session:
        with pytest.raises(NotFound, match="used, withdrawn or has expired"):
            await open_invitation(session, token, clock)
        assert await InvitationService(session, org.id, clock).list() == []


async def test_a_browser_session_ends_at_its_lifetime(db: Database) -> None:
    clock = Clock()
    async with db.transaction() as session:
        user = await UserService(session).create("session@example.com")
        value = await BrowserSessionService(session, clock).start(user.id, 600)
    clock.now += timedelta(seconds=599)
    async with db.transaction() as session:
        found = await BrowserSessionService(session, clock).user(value)
        assert found is not None and found.id == user.id
    clock.now += timedelta(seconds=1)
    async with db.transaction() as session:
        assert await BrowserSessionService(session, clock).user(value) is None
