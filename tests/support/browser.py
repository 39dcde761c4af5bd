"""Helpers for the dashboard's browser tests: Debian's Chromium (never `playwright install`), people who log in."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from playwright.sync_api import Page, expect

from meshgate.db.database import Database
from meshgate.identity.passwords import hash_password
from meshgate.identity.service import MemberService, UserService
from support.gateway import Gateway
from support.oauth import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

T = TypeVar("T")


def require_chromium() -> None:
    """Skip (with the reason) without Chromium locally; in CI its absence is a failure."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true)")
    pytest.skip(reason)


@dataclass
class Login:
    email: str
    password: str
    user_id: str


async def add_member(gateway: Gateway, organization_id: str, role: str = "member") -> Login:
    """A person with a password who joins an existing organization with `role`."""
    email = f"member-{uuid.uuid4().hex[:10]}@example.com"
    db = Database(gateway.env["DATABASE_URL"])
    try:
        async with db.transaction() as session:
            user = await UserService(session).create(email, password_hash=hash_password(PASSWORD))
            await MemberService(session, organization_id).add(user.id, role)
    finally:
        await db.close()
    return Login(email, PASSWORD, user.id)


def run_async(function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run a test helper coroutine from a synchronous browser test (Playwright owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, partial(function, *args, **kwargs)).result()


def log_in(page: Page, gateway: Gateway, email: str, password: str) -> None:
    """Log in through the login page, which opens the first organization's connections."""
    page.goto(f"{gateway.url}/app")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Connections", exact=True)).to_be_visible()


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map(e => e.outerHTML.slice(0, 120))"""


def shot(page: Page, name: str) -> None:
    """Save a screenshot of a main page, after checking every control on it has a name a screen reader reads."""
    assert page.evaluate(UNLABELLED) == [], f"controls without a label on {name}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
