"""Sign-in links by email over HTTP, against a gateway whose mail goes to a real SMTP server: one-time,
15 minutes, only in the browser that asked, throttled, and the same answer for every address."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from support.gateway import Gateway
from support.mail import SmtpSink
from support.oauth import new_person
from support.served import TestClock
from support.sign_in import ask_for_link, browser, mail_gateway, mail_to, mailed_link, submit

pytestmark = pytest.mark.anyio

VOID = "this link is not valid: it was used already, has expired"


@pytest.fixture
async def served(tmp_db: str, tmp_path: Path) -> AsyncIterator[tuple[Gateway, SmtpSink, TestClock]]:
    clock = TestClock()
    async with mail_gateway(
        tmp_db,
        tmp_path,
        clock,
        MESHGATE_MAIL_RATE_ADDRESS="1/hour,burst=2",
        MESHGATE_MAIL_RATE_CLIENT="1/hour,burst=4",
    ) as (gateway, sink):
        yield gateway, sink, clock


async def _signed_in(http: httpx.AsyncClient) -> bool:
    return (await http.get("/app/account")).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_a_link_signs_in_once_in_the_browser_that_asked(served: tuple[Gateway, SmtpSink, TestClock]) -> None:
    gateway, sink, _clock = served
    person = await new_person(gateway, "Magic Org")
    async with browser(gateway) as http:
        login = await http.get("/login")
        assert "Email me a link" in login.text
        asked = await ask_for_link(http, person.email)
        assert asked.status_code == 303
        assert asked.headers["location"].endswith("/login/magic/sent")
        sent = await http.get(asked.headers["location"])
        assert sent.status_code == 200 and "Check your email" in sent.text
        link = await mailed_link(gateway, sink, person.email)
        assert link.startswith("/login/magic/mgm_")

        opened = await http.get(link)
        assert opened.status_code == 303, opened.text
        assert opened.headers["location"].endswith("/app")
        account = await http.get("/app/account")
        assert account.status_code == 200
        assert person.email in account.text and "confirmed" in account.text

    async with browser(gateway) as again:
        reused = await again.get(link)
        assert reused.status_code == 404
        assert VOID in reused.text
        assert not await _signed_in(again)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_link_opened_in_another_browser_is_refused_and_still_works_where_it_was_asked(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, _clock = served
    person = await new_person(gateway, "Other Browser Org")
    async with browser(gateway) as asker, browser(gateway) as stranger:
        assert (await ask_for_link(asker, person.email)).status_code == 303
        link = await mailed_link(gateway, sink, person.email)
        refused = await stranger.get(link)
        assert refused.status_code == 403
        assert "asked for in another browser" in refused.text
        assert "mg_session" not in refused.headers.get("set-cookie", "")
        assert not await _signed_in(stranger)

        assert (await asker.get(link)).status_code == 303
        assert await _signed_in(asker)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_expired_or_forged_link_is_refused_and_signs_nobody_in(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, clock = served
    person = await new_person(gateway, "Expired Link Org")
    async with browser(gateway) as http:
        assert (await ask_for_link(http, person.email)).status_code == 303
        link = await mailed_link(gateway, sink, person.email)
        clock.advance(15 * 60)
        expired = await http.get(link)
        assert expired.status_code == 404
        assert VOID in expired.text
        for forged in ("/login/magic/mgm_" + "A" * 43, "/login/magic/mgr_" + "A" * 43, "/login/magic/" + "x" * 300):
            page = await http.get(forged)
            assert page.status_code == 404, forged
            assert VOID in page.text
        assert not await _signed_in(http)


def _comparable(response: httpx.Response) -> tuple[int, str, list[str]]:
    cookies = sorted(re.findall(r"(?:^|, )(\w+)=", response.headers.get("set-cookie", "")))
    return response.status_code, response.headers.get("location", ""), cookies


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_asking_answers_the_same_whether_or_not_the_address_has_an_account(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, _clock = served
    person = await new_person(gateway, "Same Answer Org")
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with browser(gateway) as first, browser(gateway) as second:
        unknown = await ask_for_link(first, nobody)
        known = await ask_for_link(second, person.email)
        assert _comparable(unknown) == _comparable(known)
        assert unknown.text == known.text
        unknown_page = await first.get(unknown.headers["location"])
        known_page = await second.get(known.headers["location"])
        assert unknown_page.status_code == known_page.status_code == 200
        strip = re.compile(r'name="csrf_token" value="[^"]*"')
        assert strip.sub("", unknown_page.text) == strip.sub("", known_page.text)
    await mail_to(sink, person.email)  # one outbox queue, in order: the unknown address had its turn before
    assert sink.to(nobody) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_links_and_resets_are_throttled_per_address_and_per_client(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, _sink, clock = served
    person = await new_person(gateway, "Throttle Org")
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with browser(gateway) as http:
        # Per address (2 an hour): an address with an account and one without are throttled alike.
        for address in (person.email, nobody):
            assert [(await ask_for_link(http, address)).status_code for _ in range(2)] == [303, 303]
            refused = await ask_for_link(http, address)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert "too many links were asked for" in refused.text
        # Per client (4 an hour, spent above): a fresh address is refused to this client too.
        fresh = await ask_for_link(http, f"fresh-{uuid.uuid4().hex[:8]}@example.com")
        assert fresh.status_code == 429
        clock.advance(3600)
        assert (await ask_for_link(http, person.email)).status_code == 303

        # Password reset requests: their own budget per address.
        for _ in range(2):
            assert (await submit(http, "/password/forgot", email=person.email)).status_code == 303
        reset = await submit(http, "/password/forgot", email=person.email)
        assert reset.status_code == 429
        assert "too many links were asked for" in reset.text
