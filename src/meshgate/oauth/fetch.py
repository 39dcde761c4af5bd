"""Small outbound HTTP requests for OAuth (metadata documents, registration, token calls).

Every connection goes through the SSRF address policy after DNS resolution (see
`meshgate.connections.addresses`); redirects are followed only for GET, at most three, each new
address checked again; bodies are capped. TLS uses the system trust store (`SSL_CERT_FILE` adds one).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.upstream.http11 import HttpError, Pool

MAX_BODY = 256 * 1024
MAX_REDIRECTS = 3


class FetchError(Exception):
    """The document could not be fetched or is not what was expected; the message says why."""


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"{self.url} did not answer JSON") from exc


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


async def fetch(
    url: str,
    *,
    addresses: AddressPolicy,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    limit: int = MAX_BODY,
    timeout_s: float = 10.0,
    require_https: bool = False,
) -> Fetched:
    """One request (GET follows up to three redirects); raises `FetchError` with a readable reason."""
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"{url[:200]} is not an http(s) URL")
        if require_https and parts.scheme != "https":
            raise FetchError(f"{url[:200]} must use https")
        pool = Pool(url, ssl_context=_tls(), connect_timeout=timeout_s, addresses=addresses)
        try:
            sent = {"accept": "application/json", "user-agent": "meshgate", "connection": "close", **(headers or {})}
            response = await pool.request(method, sent, body, head_timeout=timeout_s)
            try:
                data = await response.read(limit, idle_s=timeout_s)
            finally:
                response.release()
        except HttpError as exc:
            raise FetchError(f"{url[:200]}: {exc}") from exc
        finally:
            pool.close()
        location = response.headers.get("location")
        if method == "GET" and response.status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        return Fetched(response.status, response.headers, data, url)
    raise FetchError(f"{url[:200]}: more than {MAX_REDIRECTS} redirects")
