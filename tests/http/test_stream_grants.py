"""Held streams end when their credential expires (security review 20), on the grants' injectable clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from meshgate.access import Principal
from meshgate.db.database import Database, announce_change
from meshgate.http.stream_grants import StreamGrants
from meshgate.identity.service import IDENTITY

pytestmark = [pytest.mark.anyio, pytest.mark.finding(20)]

EXPIRY = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _principal(expires_at: datetime | None) -> Principal:
    return Principal(
        user_id="u", organization_id="o", organization_slug="o", role="member", grants=(), expires_at=expires_at
    )


async def _still_valid(_token: str) -> Principal:
    return _principal(EXPIRY)  # the credential still authenticates: only its expiry can end the stream


async def _identity_changed(db: Database) -> None:
    async with db.transaction() as session:
        await announce_change(session, IDENTITY)


async def test_a_stream_held_after_its_credential_expired_ends_at_once(db: Database) -> None:
    grants = StreamGrants(db, _still_valid, clock=Clock(EXPIRY + timedelta(seconds=1)))
    with grants.hold("token", frozenset(), lambda _p: True, EXPIRY) as ended:
        with anyio.fail_after(10):
            await ended.wait()


async def test_a_stream_ends_when_the_clock_passes_its_credentials_expiry(db: Database) -> None:
    clock = Clock(EXPIRY - timedelta(hours=1))
    checked: list[str] = []
    both_checked = asyncio.Event()

    async def authenticate(token: str) -> Principal:
        checked.append(token)
        if len(checked) == 2:
            both_checked.set()
        return await _still_valid(token)

    grants = StreamGrants(db, authenticate, clock=clock)
    with (
        grants.hold("token", frozenset(), lambda _p: True, EXPIRY) as expiring,
        grants.hold("other", frozenset(), lambda _p: True, None) as lasting,
    ):
        await _identity_changed(db)  # a re-check before the expiry keeps both
        with anyio.fail_after(10):
            await both_checked.wait()
        assert not expiring.is_set() and not lasting.is_set()
        clock.now = EXPIRY + timedelta(seconds=1)
        await _identity_changed(db)
        with anyio.fail_after(10):
            await expiring.wait()
        assert not lasting.is_set()  # a credential without an expiry keeps its stream
