"""OAuth 2.1 for the command line: dynamic client registration, PKCE (S256), a loopback redirect on
127.0.0.1 (RFC 8252 §7.3: any port), and refresh-token rotation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from meshgate.remote.credentials import TokenSet
from meshgate.remote.endpoints import Endpoint
from meshgate.remote.errors import NotLoggedIn, RemoteError, Unreachable

CALLBACK_PATH = "/callback"
REDIRECT_TEMPLATE = "http://127.0.0.1" + CALLBACK_PATH  # registered without a port; the port varies per login
_DONE_PAGE = b"<!doctype html><title>meshgate</title><p>Logged in. You can close this tab and go back to the terminal."


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None


def request(http: httpx2.Client, method: str, url: str, **kwargs: Any) -> httpx2.Response:
    """One HTTP request; a network failure becomes `Unreachable`."""
    try:
        return http.request(method, url, **kwargs)
    except httpx2.TransportError as error:
        raise Unreachable(f"cannot reach {url}: {error or type(error).__name__}") from error


def discover(http: httpx2.Client, base: str) -> ServerMetadata:
    """RFC 8414 metadata of the gateway's authorization server."""
    response = request(http, "GET", f"{base}/.well-known/oauth-authorization-server")
    if response.status_code != 200:
        raise RemoteError(f"{base} published no OAuth metadata (HTTP {response.status_code}); is it a meshgate?")
    body = response.json()
    try:
        return ServerMetadata(
            issuer=str(body["issuer"]),
            authorization_endpoint=str(body["authorization_endpoint"]),
            token_endpoint=str(body["token_endpoint"]),
            registration_endpoint=body.get("registration_endpoint"),
        )
    except (KeyError, TypeError) as error:
        raise RemoteError(f"{base}'s OAuth metadata lacks {error}") from error


def register_client(http: httpx2.Client, metadata: ServerMetadata) -> str:
    """A public client (no secret) registered dynamically (RFC 7591); returns its client_id."""
    if metadata.registration_endpoint is None:
        raise RemoteError(f"{metadata.issuer} does not offer dynamic client registration; use --api-key")
    response = request(
        http,
        "POST",
        metadata.registration_endpoint,
        json={
            "client_name": "meshgate command line",
            "redirect_uris": [REDIRECT_TEMPLATE],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    if response.status_code != 201:
        raise RemoteError(f"client registration refused: {_oauth_reason(response)}")
    return str(response.json()["client_id"])


def _oauth_reason(response: httpx2.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('error')}: {body.get('error_description')}"
    except ValueError:
        return f"HTTP {response.status_code}"


def _tokens(body: dict[str, Any], now: float) -> TokenSet:
    expires_in = body.get("expires_in")
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=now + float(expires_in) if isinstance(expires_in, int | float) else None,
    )


class _CallbackServer(HTTPServer):
    received: dict[str, str] | None = None


class _Callback(BaseHTTPRequestHandler):
    """Receives the browser's redirect: `/callback?code=…&state=…&iss=…`."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        if isinstance(self.server, _CallbackServer):
            self.server.received = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(_DONE_PAGE)))
        self.end_headers()
        self.wfile.write(_DONE_PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        """Quiet: the terminal shows only what the person needs."""


class LoopbackReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that waits for one authorization redirect."""

    def __init__(self) -> None:
        self._server = _CallbackServer(("127.0.0.1", 0), _Callback)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        self._server.timeout = 0.5
        while (received := self._server.received) is None:
            if time.monotonic() > deadline:
                raise NotLoggedIn(f"no answer from the browser within {timeout:.0f} s; run `meshgate login` again")
            self._server.handle_request()
        return received

    def close(self) -> None:
        self._server.server_close()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(
    http: httpx2.Client,
    endpoint: Endpoint,
    metadata: ServerMetadata,
    client_id: str,
    *,
    show: Callable[[str], None],
    open_browser: bool,
    timeout: float = 300,
    now: Callable[[], float] = time.time,
) -> TokenSet:
    """The authorization code flow with PKCE through the person's browser; returns the tokens for `endpoint`."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    receiver = LoopbackReceiver()
    try:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": receiver.redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "resource": endpoint.resource,
            }
        )
        url = f"{metadata.authorization_endpoint}?{query}"
        show(f"Open this address in your browser to log in:\n  {url}")
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        answer = receiver.wait(timeout)
    finally:
        receiver.close()
    if answer.get("state") != state:
        raise NotLoggedIn("the browser's answer does not belong to this login (state differs); try again")
    if "error" in answer:
        raise NotLoggedIn(f"authorization refused: {answer['error']}: {answer.get('error_description', '')}")
    if answer.get("iss") not in (None, metadata.issuer):
        raise NotLoggedIn(f"the answer came from issuer {answer.get('iss')!r}, not {metadata.issuer!r}")
    started = now()
    response = request(
        http,
        "POST",
        metadata.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": answer.get("code", ""),
            "redirect_uri": receiver.redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": endpoint.resource,
        },
    )
    if response.status_code != 200:
        raise NotLoggedIn(f"the code exchange was refused: {_oauth_reason(response)}")
    return _tokens(response.json(), started)


def refresh(
    http: httpx2.Client,
    metadata: ServerMetadata,
    client_id: str,
    resource: str,
    tokens: TokenSet,
    *,
    now: Callable[[], float] = time.time,
) -> TokenSet:
    """New tokens for a refresh token (which rotates: the old one is used up)."""
    if tokens.refresh_token is None:
        raise NotLoggedIn("the access token expired and there is no refresh token: run `meshgate login` again")
    started = now()
    response = request(
        http,
        "POST",
        metadata.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "client_id": client_id,
            "resource": resource,
        },
    )
    if response.status_code != 200:
        raise NotLoggedIn(f"the login expired ({_oauth_reason(response)}): run `meshgate login` again")
    return _tokens(response.json(), started)
