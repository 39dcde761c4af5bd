"""Mail providers: Resend and SendGrid over their HTTP APIs, any SMTP server (STARTTLS, TLS, auth).

Each takes a `Message` and either returns or raises `MailFailed` saying whether a retry can help
(`retryable`: network trouble, 429, 5xx; not: a refused key or address). Nothing here logs a secret.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, Protocol

import httpx

from meshgate.auth_config import EmailProviderConfig

RESEND_URL = "https://api.resend.com"
SENDGRID_URL = "https://api.sendgrid.com"


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    text: str
    html: str
    purpose: str


class MailFailed(Exception):
    """One attempt failed; the message says why without any credential."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class MailProvider(Protocol):
    id: str

    async def send(self, message: Message) -> None: ...

    async def close(self) -> None: ...


def _sender(config: EmailProviderConfig) -> str:
    return formataddr((config.from_name, config.from_email)) if config.from_name else config.from_email


class HttpApiProvider:
    """An HTTP mail API (Resend, SendGrid): one pooled client per provider, built once; `body` is its shape."""

    def __init__(
        self,
        config: EmailProviderConfig,
        url: str,
        body: Callable[[EmailProviderConfig, Message], dict[str, Any]],
    ) -> None:
        self.id = config.id
        self._config = config
        self._url = url
        self._body = body
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds)

    async def send(self, message: Message) -> None:
        headers = {"authorization": f"Bearer {self._config.api_key}", "content-type": "application/json"}
        try:
            response = await self._client.post(self._url, json=self._body(self._config, message), headers=headers)
        except httpx.HTTPError as exc:
            raise MailFailed(f"{self.id}: {type(exc).__name__} reaching {self._url}", retryable=True) from exc
        if response.status_code >= 300:
            retryable = response.status_code == 429 or response.status_code >= 500
            raise MailFailed(f"{self.id}: {self._url} answered HTTP {response.status_code}", retryable=retryable)

    async def close(self) -> None:
        await self._client.aclose()


def resend_body(config: EmailProviderConfig, message: Message) -> dict[str, Any]:
    """Resend's `POST /emails` (https://resend.com/docs/api-reference/emails/send-email)."""
    return {
        "from": _sender(config),
        "to": [message.to],
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
    }


def sendgrid_body(config: EmailProviderConfig, message: Message) -> dict[str, Any]:
    """SendGrid's `POST /v3/mail/send` (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send)."""
    sender: dict[str, str] = {"email": config.from_email}
    if config.from_name:
        sender["name"] = config.from_name
    return {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": sender,
        "subject": message.subject,
        # SendGrid requires text/plain before text/html.
        "content": [{"type": "text/plain", "value": message.text}, {"type": "text/html", "value": message.html}],
    }


class SmtpProvider:
    """SMTP with implicit TLS (465), STARTTLS (587) or, on a trusted network, neither; login when configured.

    smtplib blocks, so each send runs on a worker thread; mail is rare and off the request path."""

    def __init__(self, config: EmailProviderConfig, tls_context: ssl.SSLContext | None = None) -> None:
        self.id = config.id
        self._config = config
        self._tls = tls_context or ssl.create_default_context()

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Message) -> None:
        config = self._config
        mail = EmailMessage()
        mail["From"] = _sender(config)
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=config.from_email.rsplit("@", 1)[-1])
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        host, port = config.host or "localhost", config.port or 25
        try:
            if config.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=config.timeout_seconds, context=self._tls)
            else:
                client = smtplib.SMTP(host, port, timeout=config.timeout_seconds)
            with client:
                if config.security == "starttls":
                    client.starttls(context=self._tls)
                if config.username is not None and config.password is not None:
                    client.login(config.username, config.password)
                client.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailFailed(
                f"{self.id}: the SMTP server refused the login ({exc.smtp_code})", retryable=False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailFailed(f"{self.id}: the SMTP server refused the recipient", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            retryable = exc.smtp_code >= 400 and exc.smtp_code < 500
            raise MailFailed(f"{self.id}: the SMTP server answered {exc.smtp_code}", retryable=retryable) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailFailed(f"{self.id}: {type(exc).__name__} talking to {host}:{port}", retryable=True) from exc

    async def close(self) -> None:
        return None


def build_provider(config: EmailProviderConfig, tls_context: ssl.SSLContext | None = None) -> MailProvider:
    """The provider for one `emailProviders` entry."""
    if config.kind == "resend":
        return HttpApiProvider(config, (config.base_url or RESEND_URL) + "/emails", resend_body)
    if config.kind == "sendgrid":
        return HttpApiProvider(config, (config.base_url or SENDGRID_URL) + "/v3/mail/send", sendgrid_body)
    return SmtpProvider(config, tls_context)
