"""An organization's own S3-compatible bucket, against moto's S3 server started by the test on 127.0.0.1 (the
S3 wire protocol; meshgate talks to it with boto3), through a real gateway on every database backend."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from boto3.session import Session
from moto.server import ThreadedMotoServer

from conftest import new_owner
from support.gateway import Gateway, Owner, free_port
from support.mcp_client import call, call_error, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
ACCESS_KEY_ID = "AKIAMESHGATETEST"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _direct(endpoint: str) -> Any:
    """The test's own view of the bucket, past meshgate."""
    return Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key="test-only",
    )


def _new_bucket(endpoint: str) -> str:
    name = f"mg-{secrets.token_hex(6)}"
    _direct(endpoint).create_bucket(Bucket=name)
    return name


def _settings(endpoint: str, bucket: str, secret: str) -> dict[str, Any]:
    return {"endpoint": endpoint, "bucket": bucket, "accessKeyId": ACCESS_KEY_ID, "secretAccessKey": secret}


async def _configured(gateway: Gateway, endpoint: str, bucket: str, org: str = "Acme") -> tuple[Owner, str]:
    owner = await new_owner(gateway, org)
    secret = remember_secret(f"s3-secret-{secrets.token_urlsafe(24)}")
    async with connect(gateway.mcp_url, owner.api_key) as client:
        shown = await call(client, "STORAGE_CONFIG_SET", _settings(endpoint, bucket, secret))
    assert shown["backend"] == "s3" and shown["secretAccessKeySet"] is True and secret not in str(shown)
    return owner, secret


async def test_a_presigned_put_then_get_round_trips_through_the_bucket(gateway: Gateway, s3_endpoint: str) -> None:
    bucket = _new_bucket(s3_endpoint)
    owner, secret = await _configured(gateway, s3_endpoint, bucket)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "in/report.json", "contentType": "application/json"})
        assert put["url"].startswith(f"{s3_endpoint}/{bucket}/") and "X-Amz-Signature" in put["url"]
        assert "content-type" in put["url"].lower()  # the Content-Type is one of the signed headers
        uploaded = await http.put(put["url"], content=b'{"ok": true}', headers=put["headers"])
        assert uploaded.status_code == 200, uploaded.text
        meta = await call(client, "GET_OBJECT_METADATA", {"key": "in/report.json"})
        assert meta["size"] == 12 and meta["contentType"] == "application/json"
        get = await call(client, "GET_PRESIGNED_URL", {"key": "in/report.json"})
        downloaded = await http.get(get["url"])
        assert downloaded.status_code == 200 and downloaded.content == b'{"ok": true}'
        listed = await call(client, "LIST_OBJECTS", {"prefix": "in/"})
        assert [item["key"] for item in listed["objects"]] == ["in/report.json"] and listed["backend"] == "s3"
        results = [put, meta, get, listed, await call(client, "STORAGE_CONFIG_GET", {})]
    assert all(secret not in str(result) for result in results)
    stored = _direct(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in stored] == [f"{owner.organization_id}/in/report.json"]  # the org's prefix
    assert secret not in gateway.logs()


async def test_listing_pages_and_deleting_many_in_the_bucket(gateway: Gateway, s3_endpoint: str) -> None:
    bucket = _new_bucket(s3_endpoint)
    owner, _secret = await _configured(gateway, s3_endpoint, bucket)
    async with connect(gateway.mcp_url, owner.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        for key in ("a/1", "a/2", "a/3"):
            put = await call(client, "PUT_PRESIGNED_URL", {"key": key})
            assert (await http.put(put["url"], content=key.encode())).status_code == 200
        first = await call(client, "LIST_OBJECTS", {"limit": 2})
        assert [item["key"] for item in first["objects"]] == ["a/1", "a/2"] and first["nextCursor"] == "a/2"
        rest = await call(client, "LIST_OBJECTS", {"limit": 2, "cursor": "a/2"})
        assert [item["key"] for item in rest["objects"]] == ["a/3"] and rest["nextCursor"] is None
        assert await call(client, "DELETE_OBJECTS", {"keys": ["a/1", "a/2"]}) == {
            "deleted": ["a/1", "a/2"],
            "errors": [],
        }
        await call(client, "DELETE_OBJECT", {"key": "a/3"})
        assert (await call(client, "LIST_OBJECTS", {}))["objects"] == []
        assert "not found" in await call_error(client, "GET_OBJECT_METADATA", {"key": "a/3"})


async def test_two_organizations_on_one_bucket_cannot_reach_each_others_objects(
    gateway: Gateway, s3_endpoint: str
) -> None:
    bucket = _new_bucket(s3_endpoint)
    alice, _ = await _configured(gateway, s3_endpoint, bucket, "Alice")
    bob, _ = await _configured(gateway, s3_endpoint, bucket, "Bob")
    async with connect(gateway.mcp_url, alice.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        put = await call(client, "PUT_PRESIGNED_URL", {"key": "secret.txt"})
        assert (await http.put(put["url"], content=b"alice only")).status_code == 200
    async with connect(gateway.mcp_url, bob.api_key) as client, httpx.AsyncClient(timeout=30) as http:
        assert (await call(client, "LIST_OBJECTS", {}))["objects"] == []
        assert "not found" in await call_error(client, "GET_OBJECT_METADATA", {"key": "secret.txt"})
        hostile = f"../{alice.organization_id}/secret.txt"
        assert "refused" in await call_error(client, "GET_OBJECT_METADATA", {"key": hostile})
        assert "refused" in await call_error(client, "LIST_OBJECTS", {"prefix": f"../{alice.organization_id}/"})
        assert (
            await http.get((await call(client, "GET_PRESIGNED_URL", {"key": "secret.txt"}))["url"])
        ).status_code == 404
        await call(client, "DELETE_OBJECTS", {"keys": ["secret.txt"]})
    async with connect(gateway.mcp_url, alice.api_key) as client:
        assert (await call(client, "GET_OBJECT_METADATA", {"key": "secret.txt"}))["size"] == 10


async def test_a_bucket_that_does_not_answer_is_not_saved(gateway: Gateway, s3_endpoint: str) -> None:
    owner = await new_owner(gateway)
    secret = remember_secret(f"s3-secret-{secrets.token_urlsafe(24)}")
    async with connect(gateway.mcp_url, owner.api_key) as client:
        missing = await call_error(client, "STORAGE_CONFIG_SET", _settings(s3_endpoint, "no-such-bucket-here", secret))
        assert "no-such-bucket-here" in missing and secret not in missing
        closed = await call_error(
            client, "STORAGE_CONFIG_SET", _settings(f"http://127.0.0.1:{free_port()}", "b-1", secret)
        )
        assert "cannot use the object store" in closed and secret not in closed
        assert "bucket" in await call_error(client, "STORAGE_CONFIG_SET", _settings(s3_endpoint, "Bad_Bucket", secret))
        assert "endpoint" in await call_error(client, "STORAGE_CONFIG_SET", _settings("ftp://x", "b-1", secret))
        path = await call_error(client, "STORAGE_CONFIG_SET", _settings(f"{s3_endpoint}/x?y", "b-1", secret))
        assert "no path" in path
        assert await call(client, "STORAGE_CONFIG_GET", {}) == {"backend": "local", "configured": False}
    assert secret not in gateway.logs()


async def test_the_secret_is_kept_on_update_and_clearing_goes_back_to_the_local_store(
    gateway: Gateway, s3_endpoint: str
) -> None:
    bucket = _new_bucket(s3_endpoint)
    owner, secret = await _configured(gateway, s3_endpoint, bucket)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        changed = await call(
            client, "STORAGE_CONFIG_SET", {"endpoint": s3_endpoint, "bucket": bucket, "accessKeyId": "AKIAOTHER"}
        )
        assert changed["accessKeyId"] == "AKIAOTHER" and secret not in str(changed)
        assert (await call(client, "LIST_OBJECTS", {}))["backend"] == "s3"
        assert await call(client, "STORAGE_CONFIG_CLEAR", {}) == {"backend": "local", "configured": False}
        assert (await call(client, "LIST_OBJECTS", {}))["backend"] == "local"
        first_time = await call_error(
            client, "STORAGE_CONFIG_SET", {"endpoint": s3_endpoint, "bucket": bucket, "accessKeyId": "AKIAOTHER"}
        )
        assert "secretAccessKey is required" in first_time
    assert secret not in gateway.logs()
