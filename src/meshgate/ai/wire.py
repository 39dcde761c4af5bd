"""HTTP to AI providers over the gateway's own keep-alive pool (`meshgate.connections.upstream.http11`): one
pool per endpoint URL, kept across requests (no client or SSL context is built per request)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.upstream.client import shared_ssl_context
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.errors import ProviderError, ProviderRefused, ProviderTimeout, RateLimited

MAX_ANSWER = 32 * 1024 * 1024
_MAX_POOLS = 256
_MAX_ERROR = 64 * 1024


class ProviderHttp:
    def __init__(self, addresses: AddressPolicy, timeout_s: float) -> None:
        self._addresses = addresses
        self.timeout_s = timeout_s
        self._pools: OrderedDict[str, Pool] = OrderedDict()

    async def send(
        self, provider: str, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Response:
        """The answer's head; a failed connection or a silent provider is a `ProviderError`."""
        all_headers = {"user-agent": f"meshgate/{__version__}", "accept-encoding": "identity", **headers}
        if body is not None:
            all_headers["content-type"] = "application/json"
        try:
            return await self._pool(url).request(method, all_headers, body, head_timeout=self.timeout_s)
        except HttpTimeout as exc:
            raise ProviderTimeout(f"AI provider {provider} did not answer within {self.timeout_s:g} s") from exc
        except HttpError as exc:
            raise ProviderError(f"AI provider {provider} is unreachable: {exc}") from exc

    async def read(self, provider: str, response: Response, limit: int = MAX_ANSWER) -> bytes:
        try:
            return await response.read(limit, idle_s=self.timeout_s)
        except HttpTimeout as exc:
            raise ProviderTimeout(f"AI provider {provider} stopped answering for {self.timeout_s:g} s") from exc
        except HttpError as exc:
            raise ProviderError(f"AI provider {provider} broke off its answer: {exc}") from exc
        finally:
            response.release()

    async def json(self, provider: str, response: Response) -> dict[str, Any]:
        """A successful JSON object answer, else the provider's error as a `ProviderError`."""
        if response.status >= 400:
            await self.fail(provider, response)
        body = await self.read(provider, response)
        try:
            value: Any = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"AI provider {provider} answered something that is not JSON") from exc
        if not isinstance(value, dict):
            raise ProviderError(f"AI provider {provider} answered JSON that is not an object")
        return value  # pyright: ignore[reportUnknownVariableType]

    async def fail(self, provider: str, response: Response) -> None:
        """Raise the error a provider's 4xx/5xx answer stands for, with its reason (never its headers)."""
        status = response.status
        try:
            body = await self.read(provider, response, _MAX_ERROR)
        except ProviderError:
            body = b""
        reason = provider_reason(body)
        message = f"AI provider {provider} answered HTTP {status}" + (f": {reason}" if reason else "")
        if status in (400, 404, 413, 422):
            raise ProviderRefused(message)
        if status == 429:
            retry = response.headers.get("retry-after", "")
            raise RateLimited(message, retry_after=float(retry) if retry.isdigit() else 1.0)
        if status in (401, 403):
            raise ProviderError(message + " (the organization's key for it was refused; update it)")
        raise ProviderError(message)

    async def events(self, provider: str, response: Response) -> AsyncIterator[tuple[str, bytes]]:
        """Server-sent events (`event` name, `data`) as they arrive; the answer is never held whole."""
        buffer = b""
        event, data = "", list[bytes]()
        try:
            async for chunk in response.iter_chunks(idle_s=self.timeout_s):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.rstrip(b"\r")
                    if not line:
                        if data:
                            yield event, b"\n".join(data)
                        event, data = "", list[bytes]()
                    elif line.startswith(b"data:"):
                        data.append(line[5:].removeprefix(b" "))
                    elif line.startswith(b"event:"):
                        event = line[6:].strip().decode("utf-8", "replace")
                if len(buffer) > MAX_ANSWER:
                    raise ProviderError(f"AI provider {provider} sent a line of more than {MAX_ANSWER} bytes")
            if data:
                yield event, b"\n".join(data)
        except HttpTimeout as exc:
            raise ProviderTimeout(f"AI provider {provider} stopped streaming for {self.timeout_s:g} s") from exc
        except HttpError as exc:
            raise ProviderError(f"AI provider {provider} broke off its stream: {exc}") from exc
        finally:
            response.release()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, url: str) -> Pool:
        pool = self._pools.get(url)
        if pool is None:
            pool = self._pools[url] = Pool(
                url, ssl_context=shared_ssl_context(), connect_timeout=self.timeout_s, addresses=self._addresses
            )
            if len(self._pools) > _MAX_POOLS:
                _, oldest = self._pools.popitem(last=False)
                oldest.close()
        self._pools.move_to_end(url)
        return pool


def provider_reason(body: bytes) -> str:
    """The message of an OpenAI- or Anthropic-shaped error body (`{"error": {"message"}}`), cut short."""
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(value, dict):
        error: Any = value.get("error")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(error, dict) and isinstance(error.get("message"), str):  # pyright: ignore[reportUnknownMemberType]
            return str(error["message"])[:300]  # pyright: ignore[reportUnknownArgumentType]
        if isinstance(error, str):
            return error[:300]
    return ""
