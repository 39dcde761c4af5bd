"""Password login: throttled per client address and per account, the same work for every email.

Each attempt takes a token from the address's bucket and from the account's bucket before any hashing;
a successful login gives both back, so only failures count. An empty bucket answers `RateLimited`
(429 with Retry-After) without touching the database or the hasher. The buckets live in this process
(like the API rate limits); a replica set allows each replica its own budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meshgate.access.ratelimit import Rate, TokenBuckets
from meshgate.db.database import Database
from meshgate.errors import RateLimited
from meshgate.identity.models import User
from meshgate.identity.passwords import Passwords
from meshgate.identity.service import UserService
from meshgate.identity.sso_required import require_no_sso


class LoginThrottle:
    """Failed-login budgets per client address and per account (email)."""

    def __init__(
        self,
        per_address: Rate,
        per_account: Rate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address
        self._per_account = per_account
        self._buckets = TokenBuckets(clock)

    def take(self, address: str, account: str) -> None:
        """Pay for one attempt, or raise `RateLimited` saying when to come back."""
        refused = self._buckets.take_all(((f"a:{address}", self._per_address), (f"u:{account}", self._per_account)))
        if refused is not None:
            wait = refused[1]
            raise RateLimited(f"too many failed logins; try again in {max(1, round(wait))} s", retry_after=wait)

    def forgive(self, address: str, account: str) -> None:
        """The attempt succeeded: it does not count against either budget."""
        self._buckets.give_back(f"a:{address}", self._per_address)
        self._buckets.give_back(f"u:{account}", self._per_account)


class PasswordLogin:
    """Checks an email and password; the database transaction ends before the hash is checked."""

    def __init__(self, db: Database, passwords: Passwords, throttle: LoginThrottle) -> None:
        self._db = db
        self._passwords = passwords
        self._throttle = throttle

    async def log_in(self, email: str, password: str, address: str) -> User | None:
        """The user when the password matches, else None (the same work for unknown emails).

        Raises `PermissionDenied` for a right password of a member of an organization that requires SSO."""
        account = email.strip().lower()[:320]
        self._throttle.take(address, account)
        async with self._db.transaction() as session:
            found = await UserService(session).find_login(account)
        user, password_hash = found if found is not None else (None, None)
        if not await self._passwords.check(password_hash, password) or user is None:
            return None
        self._throttle.forgive(address, account)
        async with self._db.transaction() as session:
            await require_no_sso(session, user.id, "password login")
        return user


class LinkThrottle:
    """How often sign-in and reset links may be asked for: per address asked about and per client address.

    Every request counts, for addresses with and without an account alike, so being throttled tells
    nothing about the address. A full budget for one address stops links to it for everyone (the price
    of bounding the mail a stranger can make a mailbox receive); the per-client budget bounds one asker."""

    def __init__(self, per_address: Rate, per_client: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_address = per_address
        self._per_client = per_client
        self._buckets = TokenBuckets(clock)

    def take(self, purpose: str, email: str, client: str) -> None:
        """Pay for one link, or raise `RateLimited` saying when to come back."""
        refused = self._buckets.take_all(
            ((f"c:{purpose}:{client}", self._per_client), (f"e:{purpose}:{email}", self._per_address))
        )
        if refused is not None:
            wait = refused[1]
            raise RateLimited(f"too many links were asked for; try again in {max(1, round(wait))} s", retry_after=wait)
