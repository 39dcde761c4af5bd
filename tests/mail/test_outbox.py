"""Mail leaves through Resend's and SendGrid's HTTP APIs and through SMTP (STARTTLS, login), with retries,
counted failures and no secret in the logs."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import anyio
import pytest

from meshgate.auth_config import AuthConfig, parse_auth_config
from meshgate.mail.outbox import Outbox, compose
from meshgate.mail.providers import SmtpProvider, build_provider
from support.mail import html_of, link_in, mail_api, smtp_server, text_of
from support.tls import make_authority

pytestmark = pytest.mark.anyio

API_KEY = "re_test_9f8e7d6c5b4a"


def _config(provider: str, config: dict[str, object]) -> AuthConfig:
    document = {
        "emailProviders": [
            {"id": "main", "provider": provider, "config": {"fromEmail": "noreply@example.com", **config}}
        ]
    }
    return parse_auth_config(document, {})


def _reset(to: str = "ada@example.com") -> object:
    return compose("reset_password", to, {"link": "http://127.0.0.1:1/password/reset/mgr_abc", "minutes": 30})


async def _send_and_drain(outbox: Outbox, message: object) -> None:
    outbox.start()
    try:
        assert outbox.send(message)  # type: ignore[arg-type]
        with anyio.fail_after(30):
            await outbox.drain()
    finally:
        await outbox.close()


async def test_resend_gets_its_documented_request() -> None:
    with mail_api("/emails") as api:
        config = _config("resend", {"apiKey": API_KEY, "baseUrl": api.url, "fromName": "Meshgate"})
        outbox = Outbox.from_config(config)
        await _send_and_drain(outbox, _reset())
        (request,) = api.requests
    assert request.path == "/emails"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["from"] == "Meshgate <noreply@example.com>"
    assert request.body["to"] == ["ada@example.com"]
    assert request.body["subject"] == "Reset your meshgate password"
    assert "http://127.0.0.1:1/password/reset/mgr_abc" in request.body["text"]
    assert 'href="http://127.0.0.1:1/password/reset/mgr_abc"' in request.body["html"]
    assert outbox.counts == {("main", "sent"): 1}


async def test_sendgrid_gets_its_documented_request() -> None:
    with mail_api("/v3/mail/send", success=202) as api:
        outbox = Outbox.from_config(_config("sendgrid", {"apiKey": API_KEY, "baseUrl": api.url}))
        await _send_and_drain(outbox, _reset())
        (request,) = api.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["personalizations"] == [{"to": [{"email": "ada@example.com"}]}]
    assert request.body["from"] == {"email": "noreply@example.com"}
    assert [part["type"] for part in request.body["content"]] == ["text/plain", "text/html"]
    assert outbox.counts == {("main", "sent"): 1}


async def test_a_failing_api_is_retried_and_then_counted_sent(caplog: pytest.LogCaptureFixture) -> None:
    with mail_api("/emails") as api:
        api.statuses.extend([503, 429])
        config = _config("resend", {"apiKey": API_KEY, "baseUrl": api.url})
        outbox = Outbox.from_config(config, first_retry_seconds=0.01)
        with caplog.at_level(logging.WARNING, logger="meshgate.mail.outbox"):
            await _send_and_drain(outbox, _reset())
        assert len(api.requests) == 3
    assert outbox.counts == {("main", "retried"): 2, ("main", "sent"): 1}
    assert "HTTP 503" in caplog.text
    assert API_KEY not in caplog.text
    assert "mgr_abc" not in caplog.text


async def test_a_refused_key_is_not_retried_and_is_counted_failed(caplog: pytest.LogCaptureFixture) -> None:
    with mail_api("/emails") as api:
        api.statuses.extend([401])
        outbox = Outbox.from_config(_config("resend", {"apiKey": API_KEY, "baseUrl": api.url}))
        with caplog.at_level(logging.WARNING, logger="meshgate.mail.outbox"):
            await _send_and_drain(outbox, _reset())
        assert len(api.requests) == 1
    assert outbox.counts == {("main", "failed"): 1}
    assert "giving up" in caplog.text
    assert API_KEY not in caplog.text
    family = next(iter(outbox.families()))
    assert [(s.labels, s.value) for s in family.samples if s.name.endswith("_total")] == [
        ({"provider": "main", "outcome": "failed"}, 1)
    ]


async def test_smtp_with_starttls_and_login_delivers_text_and_html(tmp_path: Path) -> None:
    authority = make_authority(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(authority.cert_file, authority.key_file)
    client_tls = ssl.create_default_context(cafile=str(authority.ca_file))
    with smtp_server(tls_context=server_tls, login=("mailer", "s3cret-pass")) as sink:
        config = _config(
            "smtp",
            {
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "starttls",
                "username": "mailer",
                "password": "s3cret-pass",
            },
        )
        provider = SmtpProvider(config.email_providers[0], client_tls)
        outbox = Outbox([provider], config)
        await _send_and_drain(outbox, _reset())
        message = sink.wait_for("ada@example.com")
    assert sink.logins == ["mailer"]
    assert message["From"] == "noreply@example.com"
    assert message["Subject"] == "Reset your meshgate password"
    assert link_in(message) == "http://127.0.0.1:1/password/reset/mgr_abc"
    assert "mgr_abc" in html_of(message)
    assert "30 minutes" in text_of(message)


async def test_smtp_wrong_login_is_counted_failed_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authority = make_authority(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(authority.cert_file, authority.key_file)
    client_tls = ssl.create_default_context(cafile=str(authority.ca_file))
    with smtp_server(tls_context=server_tls, login=("mailer", "s3cret-pass")) as sink:
        config = _config(
            "smtp",
            {"host": "127.0.0.1", "port": sink.port, "username": "mailer", "password": "wrong-pass-123"},
        )
        outbox = Outbox([SmtpProvider(config.email_providers[0], client_tls)], config)
        with caplog.at_level(logging.WARNING, logger="meshgate.mail.outbox"):
            await _send_and_drain(outbox, _reset())
        assert sink.messages == []
    assert outbox.counts == {("main", "failed"): 1}
    assert "refused the login" in caplog.text
    assert "wrong-pass-123" not in caplog.text


async def test_mail_without_a_provider_is_dropped_and_counted() -> None:
    outbox = Outbox.from_config(AuthConfig())
    assert not outbox.can_send("resetPassword")
    assert not outbox.send(_reset())  # type: ignore[arg-type]
    assert outbox.counts == {("none", "dropped"): 1}


def test_each_purpose_uses_its_own_provider() -> None:
    document = {
        "emailProviders": [
            {"id": "a", "provider": "resend", "config": {"apiKey": "k", "fromEmail": "a@example.com"}},
            {"id": "b", "provider": "sendgrid", "config": {"apiKey": "k", "fromEmail": "b@example.com"}},
        ],
        "inviteEmailProviderId": "a",
        "resetPasswordEmailProviderId": "b",
    }
    config = parse_auth_config(document, {})
    assert [config.provider_for(p).id for p in ("invite", "resetPassword", "verification")] == ["a", "b", "a"]  # type: ignore[union-attr]
    assert build_provider(config.email_providers[1]).id == "b"
