"""Password hashing with argon2id, off the event loop.

One argon2id check costs tens to hundreds of milliseconds of CPU. Run on the event loop, a handful of
login attempts a second froze every tenant's proxying (security review finding 5), so hashing runs on a
small thread pool (argon2 releases the GIL while it works) and at most `MAX_WAITING` checks may queue.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from meshgate.errors import InvalidInput, RateLimited

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_WAITING = 64

T = TypeVar("T")

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile


def check_new_password(password: str) -> str:
    """The one password policy (bootstrap, invitations, change, reset, CLI): its length, and nothing else.

    Length only, as NIST SP 800-63B advises: composition rules make passwords weaker, not stronger."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is {len(password)} characters long; use at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is longer than {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """Hash a new password after checking the policy (blocking: for the CLI and tests, not for requests)."""
    return _hasher.hash(check_new_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches; never raises for a wrong password."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Passwords:
    """Hashes and checks passwords on a bounded thread pool; `checks` counts the argon2 checks it ran."""

    def __init__(self, workers: int | None = None) -> None:
        # Half the cores: the other half keeps serving the event loop while logins are checked.
        count = workers if workers is not None else max(1, (os.cpu_count() or 2) // 2)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="meshgate-argon2")
        self._busy = 0
        self._dummy: str | None = None
        self.checks = 0

    async def hash(self, password: str) -> str:
        """The argon2id hash of a new password (the policy is checked first)."""
        return await self._run(_hasher.hash, check_new_password(password))

    async def check(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches `password_hash`.

        Without a hash (unknown email, account without password) a dummy hash is checked instead, so
        the answer costs the same work and time whether or not the account exists."""
        if self._dummy is None:
            self._dummy = await self._run(_hasher.hash, os.urandom(16).hex())
        matches = await self._run(verify_password, password_hash or self._dummy, password[:MAX_PASSWORD])
        self.checks += 1
        return matches and password_hash is not None

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        if self._busy >= MAX_WAITING:
            raise RateLimited("too many password checks are waiting; retry in a second", retry_after=1)
        self._busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._busy -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
