"""The zero-configuration store: objects in the data dir, reached through URLs meshgate signs and serves itself,
driven through the management tools with the SDK's client and plain httpx, on every database backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from conftest import new_member, new_owner
from support.gateway import Gateway
from support.mcp_client import call, call_error, connect
from support.served import TestClock, served_gateway

pytestmark = pytest.mark.anyio
MAX_BYTES = 4096


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def gateway(tmp_db: str, tmp_path: Path, clock: TestClock) -> AsyncIterator[Gateway]:
    async with served_gateway(tmp_db, tmp_path, clock, MESHGATE_STORAGE_MAX_OBJECT_BYTES=str(MAX_BYTES)) as served:
        yield served


async def test_a_presigned_put_then_get_round_trips_an_object(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "reports/q4.txt", "contentType": "text/plain"})
        assert put["method"] == "PUT" and put["headers"] == {"Content-Type": "text/plain"} and put["expiresIn"] == 300
        assert put["url"].startswith(f"{gateway.url}/api/storage/objects/")
        uploaded = await http.put(put["url"], content=b"hello, storage", headers=put["headers"])
        assert uploaded.status_code == 200, uploaded.text
        meta = await call(client, "GET_OBJECT_METADATA", {"key": "reports/q4.txt"})
        assert (
            meta["size"] == meta["contentLength"] == 14
            and meta["contentType"] == "text/plain"
            and meta["etag"] == uploaded.json()["etag"]
        )
        get = await call(client, "GET_PRESIGNED_URL", {"key": "reports/q4.txt", "expiresIn": 60})
        downloaded = await http.get(get["url"])
        assert downloaded.status_code == 200 and downloaded.content == b"hello, storage"
        assert downloaded.headers["content-type"].startswith("text/plain")
        assert downloaded.headers["access-control-allow-origin"] == "*"  # a web app on any origin may fetch it
        preflight = await http.options(
            put["url"],
            headers={"origin": "https://app.example", "access-control-request-method": "PUT"},
        )
        assert preflight.status_code == 204 and "PUT" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "Content-Type"
        head = await http.head(get["url"])
        assert head.status_code == 200 and head.headers["content-length"] == "14" and head.content == b""
        listed = await call(client, "LIST_OBJECTS", {"prefix": "reports/"})
        assert [item["key"] for item in listed["objects"]] == ["reports/q4.txt"] and listed["backend"] == "local"
        assert await call(client, "DELETE_OBJECT", {"key": "reports/q4.txt"}) == {
            "key": "reports/q4.txt",
            "success": True,
        }
        assert "not found" in await call_error(client, "GET_OBJECT_METADATA", {"key": "reports/q4.txt"})
        assert (await http.get(get["url"])).status_code == 404


async def test_listing_pages_through_objects_with_a_cursor_and_deletes_many(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    keys = ["a/1", "a/2", "a/3", "b/1"]
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        for key in keys:
            put = await call(client, "PUT_PRESIGNED_URL", {"key": key})
            assert (await http.put(put["url"], content=key.encode())).status_code == 200
        first = await call(client, "LIST_OBJECTS", {"prefix": "a/", "limit": 2})
        assert [item["key"] for item in first["objects"]] == ["a/1", "a/2"] and first["nextCursor"] == "a/2"
        assert first["isTruncated"] is True and first["nextContinuationToken"] == "a/2"
        rest = await call(client, "LIST_OBJECTS", {"prefix": "a/", "limit": 2, "cursor": first["nextCursor"]})
        assert [item["key"] for item in rest["objects"]] == ["a/3"] and rest["nextCursor"] is None
        assert rest["isTruncated"] is False
        # MCP Mesh's spelling of the same arguments (its object storage binding)
        same = await call(client, "LIST_OBJECTS", {"prefix": "a/", "maxKeys": 2, "continuationToken": "a/2"})
        assert same["objects"] == rest["objects"]
        assert await call(client, "DELETE_OBJECTS", {"keys": ["a/1", "a/3", "missing"]}) == {
            "deleted": ["a/1", "a/3", "missing"],
            "errors": [],
        }
        assert [item["key"] for item in (await call(client, "LIST_OBJECTS", {}))["objects"]] == ["a/2", "b/1"]
        assert "limit" in await call_error(client, "LIST_OBJECTS", {"limit": 1001})


HOSTILE_KEYS = [
    "../other/x",
    "a/../../x",
    "/etc/passwd",
    "a\\b",
    "a\x00b",
    "a\nb",
    "a//b",
    "a/./b",
    "a/",
    "",
    "x" * 961,
]


async def test_hostile_keys_are_refused_with_the_rule(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        for key in HOSTILE_KEYS:
            for tool in ("PUT_PRESIGNED_URL", "GET_PRESIGNED_URL", "GET_OBJECT_METADATA", "DELETE_OBJECT"):
                reason = await call_error(client, tool, {"key": key})
                assert f"key {key[:100]!r} is refused: it" in reason, reason
            assert "is refused" in await call_error(client, "DELETE_OBJECTS", {"keys": ["fine", key]})
            assert "is refused" in await call_error(client, "LIST_OBJECTS", {"cursor": key})
        assert "is refused" in await call_error(client, "LIST_OBJECTS", {"prefix": "../"})
        assert "1 to 1000 keys" in await call_error(client, "DELETE_OBJECTS", {"keys": []})


async def test_bad_expiry_and_content_type_are_refused(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        assert "between 1 and 3600" in await call_error(client, "GET_PRESIGNED_URL", {"key": "k", "expiresIn": 3601})
        assert "between 1 and 3600" in await call_error(client, "PUT_PRESIGNED_URL", {"key": "k", "expiresIn": 0})
        assert "media type" in await call_error(client, "PUT_PRESIGNED_URL", {"key": "k", "contentType": "x\r\ny"})


async def test_one_organization_cannot_reach_another_organizations_objects(gateway: Gateway, tmp_path: Path) -> None:
    alice, bob = await new_owner(gateway, "Alice"), await new_owner(gateway, "Bob")
    async with connect(gateway.mcp_url, alice.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "secret.txt"})
        assert (await http.put(put["url"], content=b"alice only")).status_code == 200
    stored = tmp_path / "served" / "objects" / "data" / alice.organization_id / "secret.txt"
    assert stored.read_bytes() == b"alice only"  # under Alice's own prefix
    async with connect(gateway.mcp_url, bob.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        assert (await call(client, "LIST_OBJECTS", {}))["objects"] == []
        assert "not found" in await call_error(client, "GET_OBJECT_METADATA", {"key": "secret.txt"})
        hostile = f"../{alice.organization_id}/secret.txt"
        assert "refused" in await call_error(client, "GET_PRESIGNED_URL", {"key": hostile})
        bobs = await call(client, "GET_PRESIGNED_URL", {"key": "secret.txt"})
        assert (await http.get(bobs["url"])).status_code == 404  # Bob's key names Bob's object, which is none
        await call(client, "DELETE_OBJECT", {"key": "secret.txt"})
    async with connect(gateway.mcp_url, alice.api_key) as client:
        assert (await call(client, "GET_OBJECT_METADATA", {"key": "secret.txt"}))["size"] == 10


async def test_an_expired_url_is_refused(gateway: Gateway, clock: TestClock) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "late.txt", "expiresIn": 30})
        clock.advance(31)
        late = await http.put(put["url"], content=b"too late")
        assert late.status_code == 403 and "expired" in late.json()["error"]["message"]
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "late.txt", "expiresIn": 30})
        assert (await http.put(put["url"], content=b"in time")).status_code == 200
        get = await call(client, "GET_PRESIGNED_URL", {"key": "late.txt", "expiresIn": 30})
        clock.advance(29)
        assert (await http.get(get["url"])).status_code == 200
        clock.advance(1)
        assert (await http.get(get["url"])).status_code == 403


async def test_a_tampered_or_misused_url_is_refused(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "doc.pdf", "contentType": "application/pdf"})
        payload, _, mac = put["url"].rpartition("/")[2].partition(".")
        forged = put["url"].replace(mac, mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"))
        assert (await http.put(forged, content=b"%PDF", headers=put["headers"])).status_code == 403
        wrong_type = await http.put(put["url"], content=b"<html>", headers={"content-type": "text/html"})
        assert wrong_type.status_code == 403 and "application/pdf" in wrong_type.json()["error"]["message"]
        assert (await http.get(put["url"])).status_code == 403  # signed for PUT, not GET
        assert payload


async def test_an_oversized_upload_is_refused_and_nothing_is_kept(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "big.bin"})
        declared = await http.put(put["url"], content=b"x" * (MAX_BYTES + 1))
        assert declared.status_code == 413 and str(MAX_BYTES) in declared.text

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the store counts as it writes
            for _ in range(MAX_BYTES // 1024 + 1):
                yield b"y" * 1024

        streamed = await http.put(put["url"], content=chunks())
        assert streamed.status_code == 413
        assert (await call(client, "LIST_OBJECTS", {}))["objects"] == []
        assert (await http.put(put["url"], content=b"x" * MAX_BYTES)).status_code == 200


async def test_a_member_cannot_configure_the_store(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    member = await new_member(gateway, owner.organization_id, "member")
    settings = {"endpoint": "http://127.0.0.1:9", "bucket": "b-1", "accessKeyId": "AK", "secretAccessKey": "s" * 20}
    async with connect(gateway.mcp_url, member.api_key) as client:
        assert "not available" in await call_error(client, "STORAGE_CONFIG_SET", settings)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        assert await call(client, "STORAGE_CONFIG_GET", {}) == {"backend": "local", "configured": False}


async def test_a_key_that_is_another_objects_folder_is_refused_as_a_conflict(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "a/b"})
        assert (await http.put(put["url"], content=b"x")).status_code == 200
        assert "folder" in await call_error(client, "PUT_PRESIGNED_URL", {"key": "a"})
        assert "cannot be a folder" in await call_error(client, "PUT_PRESIGNED_URL", {"key": "a/b/c"})
