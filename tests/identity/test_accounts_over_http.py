"""A person resets a forgotten password by email, changes it, confirms their address and ends their own
sessions, against a real gateway whose mail goes to a real SMTP server started by the test."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from support.databases import fresh_database
from support.gateway import MESHGATE, Gateway, start_gateway
from support.mail import SmtpSink, link_in, smtp_server
from support.mcp_client import call, call_error, connect
from support.oauth import PASSWORD, forms_of, new_person

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def mail_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, SmtpSink]]:
    tmp = tmp_path_factory.mktemp("accounts")
    with smtp_server() as sink, fresh_database("sqlite", tmp) as url:
        config = tmp / "auth-config.json"
        provider = {"host": "127.0.0.1", "port": sink.port, "security": "none", "fromEmail": "noreply@example.com"}
        config.write_text(json.dumps({"emailProviders": [{"id": "smtp", "provider": "smtp", "config": provider}]}))
        gateway = start_gateway(url, tmp, MESHGATE_AUTH_CONFIG=str(config))
        try:
            yield gateway, sink
        finally:
            assert gateway.stop() == 0, gateway.logs()


async def _submit(http: httpx.AsyncClient, page_url: str, action: str | None = None, **fields: str) -> httpx.Response:
    page = await http.get(page_url)
    assert page.status_code == 200, page.text
    return await http.post(action or page_url, data={**forms_of(page.text).fields, **fields})


async def _log_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await _submit(http, "/login", email=email, password=password, next="/app/account")


@asynccontextmanager
async def _client(
    gateway: Gateway, email: str | None = None, password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own (cookies), signed in as `email` when given."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        if email is not None:
            assert (await _log_in(http, email, password)).status_code == 303
        yield http


def _answer(response: httpx.Response) -> tuple[object, ...]:
    """What a stranger can compare: status, where it leads, which cookies it sets, the body."""
    cookies = sorted(value.split("=", 1)[0] for value in response.headers.get_list("set-cookie"))
    return response.status_code, response.headers.get("location"), cookies, response.text


async def test_a_reset_link_sets_a_new_password_once_and_signs_out_every_browser(
    mail_gateway: tuple[Gateway, SmtpSink],
) -> None:
    gateway, sink = mail_gateway
    person = await new_person(gateway, "Reset Org")
    async with _client(gateway, person.email) as signed_in, _client(gateway) as http:
        sent = await _submit(http, "/password/forgot", email=person.email)
        assert (sent.status_code, sent.headers["location"]) == (303, "/password/forgot/sent")
        shown = await http.get(sent.headers["location"])  # reloading this page sends nothing
        assert shown.status_code == 200
        assert "Check your email" in shown.text
        link = link_in(sink.wait_for(person.email)).removeprefix(gateway.url)
        assert link.startswith("/password/reset/mgr_")

        done = await _submit(http, link, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        assert done.status_code == 200, done.text
        assert "Password changed" in done.text

        assert (await signed_in.get("/app/account")).status_code == 303  # its session ended
        assert (await _log_in(http, person.email, PASSWORD)).status_code == 401
        assert (await _log_in(http, person.email, NEW_PASSWORD)).status_code == 303

        reused = await http.get(link)
        assert reused.status_code == 404
        assert "it was used already, has expired" in reused.text
        again = await http.post(link, data={**forms_of(done.text).fields, "password": "x" * 12, "confirm": "x" * 12})
        assert again.status_code in (403, 404)
    async with _client(gateway) as http:
        assert (await _log_in(http, person.email, NEW_PASSWORD)).status_code == 303


async def test_asking_for_a_reset_answers_the_same_for_an_unknown_address(
    mail_gateway: tuple[Gateway, SmtpSink],
) -> None:
    gateway, sink = mail_gateway
    person = await new_person(gateway, "Same Answer Org")
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with _client(gateway) as http:
        unknown = await _submit(http, "/password/forgot", email=nobody)
        known = await _submit(http, "/password/forgot", email=person.email)
    assert (unknown.status_code, unknown.headers.get("location")) == (303, "/password/forgot/sent")
    assert _answer(unknown) == _answer(known)
    sink.wait_for(person.email)  # one outbox queue, in order: the unknown address had its turn before
    assert sink.to(nobody) == []


async def test_a_forged_or_mistyped_reset_link_is_refused_and_changes_nothing(
    mail_gateway: tuple[Gateway, SmtpSink],
) -> None:
    gateway, _sink = mail_gateway
    person = await new_person(gateway, "Forged Org")
    async with _client(gateway) as http:
        for forged in (
            "/password/reset/mgr_" + "A" * 43,
            "/password/reset/not-a-token",
            "/password/reset/" + "x" * 500,
        ):
            page = await http.get(forged)
            assert page.status_code == 404
            assert "this link is not valid" in page.text
        login = await http.get("/login")
        fields = {**forms_of(login.text).fields, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        posted = await http.post("/password/reset/mgr_" + "A" * 43, data=fields)
        assert posted.status_code == 404
        assert (await _log_in(http, person.email, PASSWORD)).status_code == 303


async def test_the_owner_changes_their_password_with_the_current_one(mail_gateway: tuple[Gateway, SmtpSink]) -> None:
    gateway, _sink = mail_gateway
    person = await new_person(gateway, "Change Org")
    async with _client(gateway, person.email) as me, _client(gateway, person.email) as other:
        wrong = await _submit(
            me,
            "/app/account",
            "/app/account/password",
            current_password="not my password",
            new_password=NEW_PASSWORD,
            confirm=NEW_PASSWORD,
        )
        assert wrong.status_code == 403
        assert "the current password is wrong" in wrong.text
        short = await _submit(
            me,
            "/app/account",
            "/app/account/password",
            current_password=PASSWORD,
            new_password="short",
            confirm="short",
        )
        assert short.status_code == 400
        assert "use at least 10" in short.text

        changed = await _submit(
            me,
            "/app/account",
            "/app/account/password",
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            confirm=NEW_PASSWORD,
        )
        assert changed.status_code == 303
        assert (await me.get("/app/account")).status_code == 200  # this browser stays signed in
        assert (await other.get("/app/account")).status_code == 303  # the other one was signed out
    async with _client(gateway) as http:
        assert (await _log_in(http, person.email, PASSWORD)).status_code == 401
        assert (await _log_in(http, person.email, NEW_PASSWORD)).status_code == 303


async def test_the_owner_sees_their_sessions_and_ends_another_one(mail_gateway: tuple[Gateway, SmtpSink]) -> None:
    gateway, _sink = mail_gateway
    person = await new_person(gateway, "Sessions Org")
    stranger = await new_person(gateway, "Stranger Org")
    async with (
        _client(gateway, person.email) as me,
        _client(gateway, person.email) as laptop,
        _client(gateway, stranger.email) as them,
    ):
        page = await me.get("/app/account")
        ids = re.findall(r'name="session_id" value="([0-9a-f]{64})"', page.text)
        assert len(ids) == 2
        assert "(this browser)" in page.text
        mine = re.search(
            r'\(this browser\)</strong>\s*<form[^>]*>\s*<input[^>]*>\s*<input type="hidden" name="session_id" value="([0-9a-f]{64})"',
            page.text,
        )
        assert mine is not None
        (laptop_id,) = [value for value in ids if value != mine.group(1)]

        # Another person cannot end it: it is not theirs.
        refused = await _submit(them, "/app/account", "/app/account/sessions/revoke", session_id=laptop_id)
        assert refused.status_code == 404
        assert (await laptop.get("/app/account")).status_code == 200

        ended = await _submit(me, "/app/account", "/app/account/sessions/revoke", session_id=laptop_id)
        assert ended.status_code == 303
        assert (await laptop.get("/app/account")).status_code == 303
        assert (await me.get("/app/account")).status_code == 200


async def test_the_session_tools_list_and_end_only_the_callers_own_sessions(
    mail_gateway: tuple[Gateway, SmtpSink],
) -> None:
    gateway, _sink = mail_gateway
    person = await new_person(gateway, "Session Tools Org")
    stranger = await new_person(gateway, "Other Tools Org")
    async with _client(gateway, person.email) as browser:
        async with connect(gateway.mcp_url, person.api_key) as client:
            (listed,) = (await call(client, "USER_SESSION_LIST"))["items"]
        async with connect(gateway.mcp_url, stranger.api_key) as client:
            assert (await call(client, "USER_SESSION_LIST"))["items"] == []
            refused = await call_error(client, "USER_SESSION_REVOKE", {"sessionId": listed["id"]})
            assert "not found" in refused
        assert (await browser.get("/app/account")).status_code == 200
        async with connect(gateway.mcp_url, person.api_key) as client:
            assert (await call(client, "USER_SESSION_REVOKE", {"sessionId": listed["id"]}))["revoked"] is True
            assert (await call(client, "USER_SESSION_LIST"))["items"] == []
        assert (await browser.get("/app/account")).status_code == 303


async def test_an_address_is_matched_to_an_invitation_only_after_the_emailed_link_confirms_it(
    mail_gateway: tuple[Gateway, SmtpSink],
) -> None:
    gateway, sink = mail_gateway
    opener = await new_person(gateway, "Open Link Org")
    inviter = await new_person(gateway, "Inviting Org")
    address = f"dana-{uuid.uuid4().hex[:8]}@example.com"
    async with connect(gateway.mcp_url, opener.api_key) as client:
        open_link: dict[str, Any] = await call(client, "INVITATION_CREATE", {"role": "member"})
    async with connect(gateway.mcp_url, inviter.api_key) as client:
        bound: dict[str, Any] = await call(client, "INVITATION_CREATE", {"role": "admin", "email": address})
    async with _client(gateway) as dana:
        joined = await _submit(dana, open_link["url"], email=address, password=PASSWORD)
        assert joined.status_code == 303  # a new account from an open link: its address is not proved
        refused = await _submit(dana, bound["url"])
        assert refused.status_code == 403
        assert "has not yet proved" in refused.text

        asked = await _submit(dana, "/app/account", "/app/account/verify")
        assert asked.status_code == 303
        link = link_in(sink.wait_for(address)).removeprefix(gateway.url)
        assert link.startswith("/verify-email/mgv_")
        confirmed = await dana.get(link)
        assert confirmed.status_code == 200
        assert "confirmed" in confirmed.text
        assert (await dana.get(link)).status_code == 404  # once only

        accepted = await _submit(dana, bound["url"])
        assert accepted.status_code == 303


def test_the_cli_sets_a_password_read_from_stdin_never_from_argv(mail_gateway: tuple[Gateway, SmtpSink]) -> None:
    gateway, _sink = mail_gateway
    import anyio  # noqa: PLC0415

    person = anyio.run(new_person, gateway, "CLI Org")
    run = [*MESHGATE, "user", "set-password", person.email]
    short = subprocess.run(run, env=gateway.env, input="short\nshort\n", capture_output=True, text=True, check=False)
    assert short.returncode == 1
    assert "use at least 10" in short.stderr
    done = subprocess.run(
        run, env=gateway.env, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert NEW_PASSWORD not in done.stdout + done.stderr
    response = httpx.get(f"{gateway.url}/login", timeout=10)
    fields = {**forms_of(response.text).fields, "email": person.email, "password": NEW_PASSWORD}
    login = httpx.post(f"{gateway.url}/login", data=fields, cookies=response.cookies, timeout=10)
    assert login.status_code == 303
    unknown = subprocess.run(
        [*MESHGATE, "user", "set-password", "ghost@example.com"],
        env=gateway.env,
        input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 1
    assert "no user has the email address ghost@example.com" in unknown.stderr
