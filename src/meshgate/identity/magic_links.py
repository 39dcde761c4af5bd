"""Magic links: sign in by a one-time link mailed to the account's address (`magicLinkConfig.enabled`).

A link lives 15 minutes, works once, and only in the browser that asked for it: asking sets a random
secret in a cookie of that browser, and the link's row keeps the secret's SHA-256 (`account_tokens`,
purpose `magic_link`). Opened anywhere else the link is refused and stays usable where it was asked for,
so a mail scanner that follows links, or someone who sees the mail, cannot sign in with it.
Asking answers the same for every address. An address without an account gets no mail at all: a
"no account" mail would let anyone make this gateway write to any mailbox, and accounts come from
invitations, not from asking for a link. Using a link proves the address (it is marked verified).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from meshgate.db.database import Database
from meshgate.db.rows import utc_now
from meshgate.identity.accounts import LIFETIMES, MAGIC, AccountTokens
from meshgate.identity.login import LinkThrottle
from meshgate.identity.models import User
from meshgate.identity.service import UserService
from meshgate.identity.sso_required import require_no_sso
from meshgate.mail.outbox import Outbox, compose

MINUTES = LIFETIMES[MAGIC] // 60


class MagicLinks:
    """Mails sign-in links and signs in with them."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        public_url: str,
        throttle: LinkThrottle,
        *,
        enabled: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._public_url = public_url
        self._throttle = throttle
        self._clock = clock
        self.enabled = enabled and outbox.can_send("magicLink")

    async def request(self, email: str, client: str, browser: str) -> None:
        """Mail a link bound to `browser` if the address has an account; the caller learns nothing either way.

        Raises `RateLimited` when the address or the client asked too often (for any address alike)."""
        address = email.strip().lower()[:320]
        self._throttle.take(MAGIC, address, client)
        async with self._db.transaction() as session:
            user = await UserService(session).find_by_email(address)
            tokens = AccountTokens(session, self._clock)
            token = None if user is None else await tokens.issue(user, MAGIC, browser=browser)
        if user is not None and token is not None:
            link = f"{self._public_url}/login/magic/{token}"
            self._outbox.send(compose(MAGIC, user.email, {"link": link, "minutes": MINUTES}))

    async def sign_in(self, token: str, browser: str | None) -> User:
        """The account of a live link opened in the browser that asked; the link is used up."""
        async with self._db.transaction() as session:
            user = await AccountTokens(session, self._clock).use_in_browser(token, MAGIC, browser)
            await require_no_sso(session, user.id, "signing in with a link")
            await UserService(session).mark_verified(user.id)  # the link reached the mailbox
        return user
