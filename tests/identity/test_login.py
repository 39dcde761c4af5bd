"""Password login neither stalls the event loop nor tells which emails exist, and is throttled (review finding 5)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from meshgate.access.ratelimit import Rate
from meshgate.db.database import Database
from meshgate.errors import RateLimited
from meshgate.identity.login import LoginThrottle, PasswordLogin
from meshgate.identity.passwords import Passwords
from meshgate.identity.service import UserService
from support.databases import fresh_database
from support.gateway import Gateway, start_gateway
from support.oauth import forms_of, new_person

pytestmark = pytest.mark.anyio

PASSWORD = "a long enough password"


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def passwords() -> AsyncIterator[Passwords]:
    hasher = Passwords(workers=1)
    yield hasher
    hasher.close()


async def _user(db: Database, passwords: Passwords, email: str, password: str | None = PASSWORD) -> None:
    password_hash = None if password is None else await passwords.hash(password)
    async with db.transaction() as session:
        await UserService(session).create(email, password_hash=password_hash)


async def _login_attempt(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post("/login", data={**forms_of(page.text).fields, "email": email, "password": password})


@pytest.fixture
def login_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of its own: the attempts below spend its whole login budget for 127.0.0.1."""
    with fresh_database("sqlite", tmp_path) as url:
        gateway = start_gateway(
            url, tmp_path, MESHGATE_LOGIN_RATE_ADDRESS="1/min,burst=100", MESHGATE_LOGIN_RATE_ACCOUNT="1/min,burst=24"
        )
        try:
            yield gateway
        finally:
            assert gateway.stop() == 0, gateway.logs()


@pytest.mark.finding(5)
async def test_health_answers_while_wrong_passwords_are_checked(login_gateway: Gateway) -> None:
    person = await new_person(login_gateway, "Busy logins")
    attempts_made = 26
    slowest = 0.0
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=login_gateway.url, timeout=300) as http:
        fields = forms_of((await http.get("/login")).text).fields  # one CSRF cookie for every attempt

        async def attempt(number: int) -> None:
            form = {**fields, "email": person.email, "password": f"wrong password {number}"}
            answers.append(await http.post("/login", data=form))

        with anyio.fail_after(300):
            async with anyio.create_task_group() as attempts:
                for number in range(attempts_made):
                    attempts.start_soon(attempt, number)
                await anyio.sleep(0.2)  # let the attempts arrive before measuring
                while len(answers) < attempts_made:
                    started = time.perf_counter()
                    assert (await http.get("/health")).status_code == 200
                    slowest = max(slowest, time.perf_counter() - started)
                    await anyio.sleep(0.05)
    # A generous bound: one argon2 check costs 0.1-0.6 s of CPU here; on the event loop they stacked up.
    assert slowest < 1.0, f"/health took {slowest:.2f} s while logins were checked"
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * 24 + [429] * 2  # this gateway allows an account 24 failures at once
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "too many failed logins; try again in" in limited.text


@pytest.mark.finding(5)
async def test_an_unknown_email_gets_the_answer_of_a_wrong_password(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Same answer")
    async with httpx.AsyncClient(base_url=web_gateway.url, timeout=60) as http:
        known = await _login_attempt(http, person.email, "wrong password 1")
        unknown = await _login_attempt(http, "nobody-at-all@example.com", "wrong password 1")
    assert known.status_code == unknown.status_code == 401
    assert known.text.replace(person.email, "<email>") == unknown.text.replace("nobody-at-all@example.com", "<email>")


@pytest.mark.finding(5)
async def test_an_unknown_email_costs_the_same_hashing_as_a_wrong_password(db: Database, passwords: Passwords) -> None:
    await _user(db, passwords, "known@example.com")
    await _user(db, passwords, "no-password@example.com", password=None)
    login = PasswordLogin(db, passwords, LoginThrottle(Rate(1, 100), Rate(1, 100)))
    costs: dict[str, int] = {}
    for email in ("known@example.com", "nobody@example.com", "no-password@example.com"):
        before = passwords.checks
        assert await login.log_in(email, "wrong password", "127.0.0.1") is None
        costs[email] = passwords.checks - before
    assert costs == {"known@example.com": 1, "nobody@example.com": 1, "no-password@example.com": 1}
    assert await login.log_in("known@example.com", PASSWORD, "127.0.0.1") is not None


@pytest.mark.finding(5)
async def test_failed_logins_are_throttled_per_account_and_per_address(db: Database, passwords: Passwords) -> None:
    await _user(db, passwords, "target@example.com")
    await _user(db, passwords, "other@example.com")
    clock = Clock()
    login = PasswordLogin(db, passwords, LoginThrottle(Rate(1 / 60, 3), Rate(1 / 60, 2), clock=clock))
    for _ in range(2):
        assert await login.log_in("target@example.com", "wrong password", "127.0.0.1") is None
    checks = passwords.checks
    with pytest.raises(RateLimited, match="too many failed logins") as account_limited:
        await login.log_in("Target@Example.com", PASSWORD, "::1")  # the account's budget, from any other address
    assert 59 <= account_limited.value.retry_after <= 60
    assert passwords.checks == checks  # refused before any hashing
    assert await login.log_in("other@example.com", "wrong password", "127.0.0.1") is None
    with pytest.raises(RateLimited):  # the address spent its 3 failures, whatever the account
        await login.log_in("other@example.com", PASSWORD, "127.0.0.1")

    clock.now += 60
    assert await login.log_in("target@example.com", PASSWORD, "127.0.0.1") is not None
    for _ in range(5):  # a login that succeeds costs no budget
        assert await login.log_in("target@example.com", PASSWORD, "127.0.0.1") is not None
