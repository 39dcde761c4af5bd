"""Real peers for meshgate's outgoing mail: an SMTP server (aiosmtpd) and stand-ins for the Resend and
SendGrid HTTP APIs that answer at their documented paths and keep what they were sent."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from support.gateway import free_port

LINK = re.compile(r"https?://\S+")


@dataclass
class SmtpSink:
    """What the SMTP server received, as parsed messages."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list[EmailMessage])
    logins: list[str] = field(default_factory=list[str])
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802  (aiosmtpd's hook name)
        parsed = message_from_bytes(bytes(envelope.original_content or b""), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.messages.append(parsed)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 30) -> EmailMessage:
        """The `count`-th message to `to`, waiting for it with a deadline."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                mine = [m for m in self.messages if m["To"] == to]
                if len(mine) >= count:
                    return mine[count - 1]
                left = deadline - time.monotonic()
                assert left > 0, f"no message number {count} to {to} arrived; got {[m['To'] for m in self.messages]}"
                self._arrived.wait(left)

    def to(self, address: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for m in self.messages if m["To"] == address]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue]


def link_in(message: EmailMessage) -> str:
    found = LINK.search(text_of(message))
    assert found is not None, text_of(message)
    return found.group(0)


@contextmanager
def smtp_server(
    *, tls_context: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
) -> Iterator[SmtpSink]:
    """An SMTP server on 127.0.0.1; with `tls_context` it offers STARTTLS (and requires it for AUTH)."""
    sink = SmtpSink(free_port())

    def authenticate(_server: Any, _session: Session, _envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and login is not None
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == login
        )
        if ok:
            sink.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        tls_context=tls_context,
        require_starttls=tls_context is not None,
        authenticator=authenticate if login is not None else None,
        auth_required=login is not None,
        auth_require_tls=tls_context is not None,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class ApiRequest:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class MailApi:
    """A stand-in for an HTTP mail API; answers `statuses` in turn (then 200), keeping every request."""

    port: int
    requests: list[ApiRequest] = field(default_factory=list[ApiRequest])
    statuses: list[int] = field(default_factory=list[int])
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 30) -> list[ApiRequest]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} requests arrived, expected {count}"
                self._arrived.wait(left)
            return list(self.requests)


@contextmanager
def mail_api(path: str, success: int = 200) -> Iterator[MailApi]:
    """Resend (`/emails`, 200 `{"id"}`) or SendGrid (`/v3/mail/send`, 202 no body) at `path`."""
    api = MailApi(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"null")
            with api._arrived:
                api.requests.append(ApiRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = api.statuses.pop(0) if api.statuses else (success if self.path == path else 404)
                api._arrived.notify_all()
            payload = b'{"id":"4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}' if status == 200 else b""
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            return

    server = ThreadingHTTPServer(("127.0.0.1", api.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
