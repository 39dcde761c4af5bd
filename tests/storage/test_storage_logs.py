"""What a gateway process logs about object storage: signed URLs are credentials, masked in the access log."""

from __future__ import annotations

import anyio
import httpx
import pytest

from conftest import new_owner
from support.gateway import Gateway
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio


async def test_the_access_log_masks_the_token_of_a_local_storage_url(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "logged.txt"})
        assert (await http.put(put["url"], content=b"x")).status_code == 200
    token = put["url"].rpartition("/")[2]
    with anyio.fail_after(10):
        while True:  # the access line is written after the answer is sent
            if "PUT /api/storage/objects/[redacted] HTTP/1.1" in gateway.logs():
                break
            await anyio.sleep(0.05)
    assert token not in gateway.logs()
