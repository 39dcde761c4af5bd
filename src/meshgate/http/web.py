"""What the server-rendered pages share: the logged-in user, CSRF cookies and form checks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from meshgate.connections.addresses import AddressPolicy
from meshgate.http import csrf
from meshgate.http.forms import single
from meshgate.http.pages import render
from meshgate.http.shown_once import ShownOnce
from meshgate.identity.accounts import AccountService
from meshgate.identity.login import LinkThrottle, LoginThrottle, PasswordLogin
from meshgate.identity.magic_links import MagicLinks
from meshgate.identity.models import User
from meshgate.identity.passwords import Passwords
from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from meshgate.identity.sessions import BrowserSessionService
from meshgate.runtime import Runtime
from meshgate.sso.flow import SsoSignIn


class Web:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.csrf = csrf.Csrf(runtime.settings.secret)
        self.secure = runtime.settings.public_url.startswith("https://")
        self.base = _path_of(runtime.settings.public_url)
        self.shown_once = ShownOnce(runtime.settings.secret, secure=self.secure)
        self.passwords = Passwords()
        throttle = LoginThrottle(runtime.settings.login_rate_address, runtime.settings.login_rate_account)
        self.login = PasswordLogin(runtime.db, self.passwords, throttle)
        settings = runtime.settings
        links = LinkThrottle(settings.mail_rate_address, settings.mail_rate_client, clock=runtime.clock)
        self.accounts = AccountService(
            runtime.db, self.passwords, runtime.outbox, settings.public_url, links, clock=runtime.now
        )
        self.magic_links = MagicLinks(
            runtime.db,
            runtime.outbox,
            settings.public_url,
            links,
            enabled=settings.auth_config.magic_link,
            clock=runtime.now,
        )
        addresses = AddressPolicy.for_gateway(
            settings.host, settings.port, settings.public_url, block_private=settings.block_private_networks
        )
        self.sso = SsoSignIn(
            runtime.db,
            runtime.vault,
            addresses,
            settings.public_url,
            clock=runtime.clock,
            github_url=settings.github_url,
            github_api_url=settings.github_api_url,
        )

    async def user(self, request: Request) -> User | None:
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            return None
        async with self.runtime.db.transaction() as session:
            return await BrowserSessionService(session).user(value)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page carrying a CSRF token, setting the CSRF cookie when the browser has none."""
        cookie = request.cookies.get(csrf.COOKIE)
        fresh = cookie is None or len(cookie) > 64
        if fresh:
            cookie = csrf.Csrf.new_cookie()
        assert cookie is not None  # noqa: S101  (set just above)
        response = render(template, status, csrf=self.csrf.token(cookie), base=self.base, **context)
        if fresh:
            response.set_cookie(csrf.COOKIE, cookie, httponly=True, samesite="strict", secure=self.secure, path="/")
        return response

    def form_is_genuine(self, request: Request, form: dict[str, list[str]]) -> bool:
        return self.csrf.valid(request.cookies.get(csrf.COOKIE), single(form, csrf.FIELD))

    def refused(self, request: Request) -> Response:
        return self.page(
            request,
            "message.html",
            403,
            heading="Form expired",
            message="This form expired or did not come from this site. Go back, reload the page and try again.",
            error=True,
        )

    def set_session(self, response: Response, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.runtime.settings.session_seconds,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )


def client_address(request: Request) -> str:
    """The peer address (behind a reverse proxy: the proxy's, so per-address budgets are shared by its clients)."""
    return request.client.host if request.client is not None else "unknown"


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return "" if slash < 0 else rest[slash:].rstrip("/")
