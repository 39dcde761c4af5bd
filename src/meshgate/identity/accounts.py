"""A person's own account: password change and reset, email verification, by one-time links sent by mail.

Links carry a random token whose SHA-256 is stored (`account_tokens`) with the address it was sent to, a
purpose and an expiry. Using a link deletes it; a link for an address the account no longer has is void.
A reset also ends every browser session of the account and, since the mail reached the address, marks it
verified; a change by the owner ends every session but the one that made it.
Asking for a reset answers the same whether or not the address has an account (the mail is queued, never
awaited, so the time to answer does not tell either).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import Database
from meshgate.db.rows import utc_now
from meshgate.db.tables import account_tokens
from meshgate.errors import InvalidInput, NotFound, PermissionDenied
from meshgate.identity._api_keys import hash_key
from meshgate.identity._users import UserService
from meshgate.identity.login import LinkThrottle
from meshgate.identity.models import User
from meshgate.identity.passwords import Passwords, check_new_password, hash_password
from meshgate.identity.sessions import BrowserSessionService
from meshgate.mail.outbox import Outbox, compose

RESET = "reset_password"
VERIFY = "verify_email"
MAGIC = "magic_link"
LIFETIMES = {RESET: 30 * 60, VERIFY: 24 * 3600, MAGIC: 15 * 60}
TOKEN_PREFIX = {RESET: "mgr_", VERIFY: "mgv_", MAGIC: "mgm_"}
_MAX_TOKEN = 100
_VOID = "this link is not valid: it was used already, has expired, or was not made by this gateway"
OTHER_BROWSER = (
    "this sign-in link was asked for in another browser, and it works only there: open it in the browser "
    "where you asked for it, or ask for a new link in this one"
)


class AccountTokens:
    """One-time, short-lived tokens for one purpose each."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utc_now) -> None:
        self._session = session
        self._clock = clock

    async def issue(self, user: User, purpose: str, *, browser: str | None = None) -> str:
        """A new token for `user`'s current address; earlier tokens of that purpose stop working.

        With `browser` (a secret kept in the asking browser's cookie) the token works only alongside it."""
        now = self._clock()
        await self._session.execute(
            delete(account_tokens).where(account_tokens.c.user_id == user.id, account_tokens.c.purpose == purpose)
        )
        await self._session.execute(delete(account_tokens).where(account_tokens.c.expires_at <= now))
        token = TOKEN_PREFIX[purpose] + secrets.token_urlsafe(32)
        await self._session.execute(
            account_tokens.insert().values(
                token_hash=hash_key(token),
                user_id=user.id,
                purpose=purpose,
                email=user.email,
                created_at=now,
                expires_at=now + timedelta(seconds=LIFETIMES[purpose]),
                browser_hash=None if browser is None else hash_key(browser),
            )
        )
        return token

    async def user_of(self, token: str, purpose: str) -> User:
        """The user a live token belongs to, without using it up (to show the reset form)."""
        return (await self._live(token, purpose))[0]

    async def _live(self, token: str, purpose: str) -> tuple[User, str | None]:
        """The user of a live token and the browser binding it carries."""
        if len(token) > _MAX_TOKEN or not token.startswith(TOKEN_PREFIX[purpose]):
            raise NotFound(_VOID)
        row = (
            await self._session.execute(
                select(account_tokens).where(
                    account_tokens.c.token_hash == hash_key(token), account_tokens.c.purpose == purpose
                )
            )
        ).first()
        if row is None or row.expires_at <= self._clock():
            raise NotFound(_VOID)
        user = await UserService(self._session).get(row.user_id)
        if user is None or user.email != row.email:
            raise NotFound(_VOID)
        return user, row.browser_hash

    async def use(self, token: str, purpose: str) -> User:
        """Check the token and delete it: it works once."""
        user = await self.user_of(token, purpose)
        await self._session.execute(delete(account_tokens).where(account_tokens.c.token_hash == hash_key(token)))
        return user

    async def use_in_browser(self, token: str, purpose: str, browser: str | None) -> User:
        """`use`, for a token bound to a browser: refused (and left alive for that browser) anywhere else."""
        user, bound = await self._live(token, purpose)
        if bound is None or browser is None or not hmac.compare_digest(bound, hash_key(browser[:_MAX_TOKEN])):
            raise PermissionDenied(OTHER_BROWSER)
        await self._session.execute(delete(account_tokens).where(account_tokens.c.token_hash == hash_key(token)))
        return user


class AccountService:
    """What a person does to their own account; every method names the user it acts for."""

    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        outbox: Outbox,
        public_url: str,
        throttle: LinkThrottle,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._outbox = outbox
        self._public_url = public_url
        self._throttle = throttle
        self._clock = clock

    @property
    def can_mail(self) -> bool:
        """Whether reset and verification links can be sent (an email provider is configured)."""
        return self._outbox.can_send("resetPassword")

    async def change_password(self, user: User, current: str, new: str, *, keep_session: str | None) -> None:
        """The owner changes their password, proving the current one; their other sessions end."""
        check_new_password(new)
        async with self._db.transaction() as session:
            found = await UserService(session).find_login(user.email)
        current_hash = None if found is None else found[1]
        if not await self._passwords.check(current_hash, current):
            raise PermissionDenied("the current password is wrong")
        new_hash = await self._passwords.hash(new)
        async with self._db.transaction() as session:
            await UserService(session).set_password_hash(user.id, new_hash)
            await BrowserSessionService(session, self._clock).end_all(user.id, keep=keep_session)

    async def request_reset(self, email: str, client: str) -> None:
        """Mail a reset link if the address has an account; the caller learns nothing either way.

        Raises `RateLimited` when the address or the client asked too often (for any address alike)."""
        address = email.strip().lower()[:320]
        self._throttle.take(RESET, address, client)
        async with self._db.transaction() as session:
            user = await UserService(session).find_by_email(address)
            token = None if user is None else await AccountTokens(session, self._clock).issue(user, RESET)
        if user is not None and token is not None:
            self._mail(RESET, user.email, f"/password/reset/{token}")

    async def check_reset(self, token: str) -> User:
        """The account a reset link is for, while it is valid (the link is not used up)."""
        async with self._db.transaction() as session:
            return await AccountTokens(session, self._clock).user_of(token, RESET)

    async def reset_password(self, token: str, new: str) -> User:
        """Set a new password from a reset link; the link is used up and every session of the account ends."""
        check_new_password(new)
        await self.check_reset(token)  # a void link costs no hashing
        new_hash = await self._passwords.hash(new)
        async with self._db.transaction() as session:
            user = await AccountTokens(session, self._clock).use(token, RESET)
            users = UserService(session)
            await users.set_password_hash(user.id, new_hash)
            await users.mark_verified(user.id)  # the link reached the mailbox
            await BrowserSessionService(session, self._clock).end_all(user.id)
        return user

    async def request_verification(self, user: User) -> bool:
        """Mail the user a link that proves their address; False when it is proved already or no mail can go."""
        if user.email_verified:
            return False
        if not self._outbox.can_send("verification"):
            raise InvalidInput("this gateway has no email provider configured, so it cannot send the link")
        async with self._db.transaction() as session:
            token = await AccountTokens(session, self._clock).issue(user, VERIFY)
        self._mail(VERIFY, user.email, f"/verify-email/{token}")
        return True

    async def verify_email(self, token: str) -> User:
        """Mark the address of the link's account as proved; the link is used up."""
        async with self._db.transaction() as session:
            user = await AccountTokens(session, self._clock).use(token, VERIFY)
            await UserService(session).mark_verified(user.id)
        return user

    def _mail(self, template: str, to: str, path: str) -> None:
        minutes = LIFETIMES[template] // 60
        self._outbox.send(compose(template, to, {"link": self._public_url + path, "minutes": minutes}))


async def set_password(db: Database, email: str, password: str) -> User:
    """`meshgate user set-password`: the operator sets a password; every session of the account ends."""
    password_hash = hash_password(password)  # blocking is fine in the CLI
    async with db.transaction() as session:
        users = UserService(session)
        user = await users.find_by_email(email)
        if user is None:
            raise NotFound(f"no user has the email address {email.strip().lower()[:320]}")
        await users.set_password_hash(user.id, password_hash)
        await BrowserSessionService(session).end_all(user.id)
    return user
