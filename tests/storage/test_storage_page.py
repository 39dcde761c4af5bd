"""The dashboard's storage page, as a browser without script uses it: objects listed, downloaded through a
signed URL and deleted; the bucket form refuses a store that does not answer and never shows the secret."""

from __future__ import annotations

import httpx
import pytest

from support.gateway import Gateway, free_port
from support.mcp_client import call, connect
from support.oauth import new_person
from support.secrets import remember_secret
from support.sign_in import browser, log_in, submit

pytestmark = pytest.mark.anyio


async def test_the_storage_page_lists_downloads_and_deletes_objects(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Storage Page Org")
    async with connect(web_gateway.mcp_url, person.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "notes/hello.txt", "contentType": "text/plain"})
        assert (await http.put(put["url"], content=b"hello", headers=put["headers"])).status_code == 200
    async with browser(web_gateway) as page:
        assert (await log_in(page, person.email, person.password)).status_code == 303
        slug = (await page.get("/app")).headers["location"].split("/")[2]
        shown = await page.get(f"/app/{slug}/storage")
        assert shown.status_code == 200 and "notes/hello.txt" in shown.text and "data directory" in shown.text
        link = await page.get(f"/app/{slug}/storage/download", params={"key": "notes/hello.txt"})
        assert link.status_code == 303 and link.headers["location"].startswith(
            f"{web_gateway.url}/api/storage/objects/"
        )
        assert (await page.get(link.headers["location"])).content == b"hello"

        secret = remember_secret("page-secret-key-0123456789")
        closed = f"http://127.0.0.1:{free_port()}"
        fields = {"endpoint": closed, "bucket": "b-1", "accessKeyId": "AKIAPAGE", "secretAccessKey": secret}
        refused = await submit(page, f"/app/{slug}/storage", f"/app/{slug}/storage/settings", **fields)
        assert refused.status_code == 502 and "cannot use the object store" in refused.text
        assert secret not in refused.text and "AKIAPAGE" in refused.text  # what was typed stays, but the secret

        deleted = await submit(page, f"/app/{slug}/storage", f"/app/{slug}/storage/delete", key="notes/hello.txt")
        assert deleted.status_code == 303 and deleted.headers["location"].endswith("/storage?notice=object-deleted")
        after = await page.get(deleted.headers["location"])
        assert "Object deleted." in after.text and "notes/hello.txt" not in after.text
