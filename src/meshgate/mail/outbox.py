"""The outbox: mail is queued by the request that wants it and sent by a background task, with retries.

A request never waits for a mail provider: `send` puts the message on an in-memory queue and returns.
The worker tries each message up to `attempts` times (waiting `first_retry_seconds`, doubling), logs every
failure with the provider id, purpose and reason (never the address's mailbox secret, a key or a link),
and counts outcomes per provider (`meshgate_mail_messages{provider,outcome}`: sent, retried, failed,
dropped). Messages still queued when the process stops are lost: they carry one-time links the person
can ask for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FunctionLoader, select_autoescape
from prometheus_client.core import CounterMetricFamily

from meshgate.auth_config import AuthConfig
from meshgate.mail.providers import MailFailed, MailProvider, Message, build_provider

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
SUBJECTS = {
    "reset_password": "Reset your meshgate password",
    "verify_email": "Confirm your email address for meshgate",
    "magic_link": "Your meshgate sign-in link",
    "invitation": "{inviter} invites you to {organization} on meshgate",
}
_PURPOSE_OF = {
    "reset_password": "resetPassword",
    "verify_email": "verification",
    "magic_link": "magicLink",
    "invitation": "invite",
}


def _template(name: str) -> str:
    return files("meshgate.mail").joinpath("templates", name).read_text(encoding="utf-8")


_TEXT = Environment(loader=FunctionLoader(_template), autoescape=False, keep_trailing_newline=True)  # noqa: S701  (plain text)
_HTML = Environment(loader=FunctionLoader(_template), autoescape=select_autoescape(default=True))


def compose(template: str, to: str, context: Mapping[str, Any]) -> Message:
    """A message from `templates/{template}.txt` and `.html`."""
    values = {"email": to, **context}
    return Message(
        to=to,
        subject=SUBJECTS[template].format_map({key: _one_line(value) for key, value in values.items()}),
        text=_TEXT.get_template(f"{template}.txt").render(values),
        html=_HTML.get_template(f"{template}.html").render(values),
        purpose=_PURPOSE_OF[template],
    )


def _one_line(value: Any) -> str:
    """A value fit for a subject line: no line breaks (no header injection), at most 100 characters."""
    return " ".join(str(value).split())[:100]


class Outbox:
    """Sends queued messages through the provider configured for their purpose."""

    def __init__(
        self,
        providers: Iterable[MailProvider],
        config: AuthConfig,
        *,
        attempts: int = 5,
        first_retry_seconds: float = 2.0,
    ) -> None:
        self._providers = {provider.id: provider for provider in providers}
        self._config = config
        self._attempts = attempts
        self._first_retry = first_retry_seconds
        self._queue: asyncio.Queue[tuple[MailProvider, Message]] = asyncio.Queue(MAX_QUEUED)
        self._task: asyncio.Task[None] | None = None
        self.counts: dict[tuple[str, str], int] = {}

    @classmethod
    def from_config(cls, config: AuthConfig, **options: Any) -> Outbox:
        return cls([build_provider(item) for item in config.email_providers], config, **options)

    def can_send(self, purpose: str) -> bool:
        """Whether mail for `purpose` has a provider (without one, features that need mail are off)."""
        return self._provider(purpose) is not None

    def send(self, message: Message) -> bool:
        """Queue `message`; False (and counted as dropped) when no provider serves its purpose or the queue is full."""
        provider = self._provider(message.purpose)
        if provider is None:
            self._count("none", "dropped")
            log.warning("no email provider for %s mail; the message was not sent", message.purpose)
            return False
        try:
            self._queue.put_nowait((provider, message))
        except asyncio.QueueFull:
            self._count(provider.id, "dropped")
            log.warning("the mail queue is full (%d); a %s message was dropped", MAX_QUEUED, message.purpose)
            return False
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="meshgate-mail")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for provider in self._providers.values():
            await provider.close()

    def families(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "meshgate_mail_messages", "Mail send outcomes per provider", labels=["provider", "outcome"]
        )
        for (provider, outcome), count in sorted(self.counts.items()):
            family.add_metric([provider, outcome], count)
        yield family

    def _provider(self, purpose: str) -> MailProvider | None:
        chosen = self._config.provider_for(purpose)
        return None if chosen is None else self._providers.get(chosen.id)

    def _count(self, provider: str, outcome: str) -> None:
        self.counts[provider, outcome] = self.counts.get((provider, outcome), 0) + 1

    async def _run(self) -> None:
        while True:
            provider, message = await self._queue.get()
            try:
                await self._deliver(provider, message)
            except Exception:  # a boundary: one message must not stop the outbox
                self._count(provider.id, "failed")
                log.exception("sending %s mail through %s failed unexpectedly", message.purpose, provider.id)
            finally:
                self._queue.task_done()

    async def _deliver(self, provider: MailProvider, message: Message) -> None:
        delay = self._first_retry
        for attempt in range(1, self._attempts + 1):
            try:
                await provider.send(message)
            except MailFailed as failure:
                last = attempt == self._attempts or not failure.retryable
                self._count(provider.id, "failed" if last else "retried")
                log.warning(
                    "%s mail through %s: attempt %d of %d failed: %s%s",
                    message.purpose,
                    provider.id,
                    attempt,
                    self._attempts,
                    failure.reason,
                    "; giving up" if last else "",
                )
                if last:
                    return
                await asyncio.sleep(delay)
                delay *= 2
            else:
                self._count(provider.id, "sent")
                return

    async def drain(self) -> None:
        """Wait until every queued message was tried (for orderly stops and tests)."""
        await self._queue.join()
