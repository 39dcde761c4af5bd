"""An S3-compatible store (AWS S3, MinIO, R2, Ceph, …) through boto3, whose calls block: they run in a thread.

boto3 rather than minio: minio's presigned PUT cannot sign a Content-Type (docs/decisions.md). boto3 ships no
type information, so its client is `Any` here and nothing of it leaves this module.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from meshgate.connections.addresses import AddressPolicy, AddressRefused
from meshgate.errors import NotFound, StorageError
from meshgate.storage.models import ObjectInfo, ObjectPage

T = TypeVar("T")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Config:
    """An organization's store as configured; `secret_access_key` is opened from the vault only in memory."""

    endpoint: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    path_style: bool = True


class S3Store:
    def __init__(self, config: S3Config, addresses: AddressPolicy) -> None:
        self.config = config
        self._addresses = addresses
        self._client: Any = None
        self._lock = asyncio.Lock()

    @property
    def kind(self) -> str:
        return "s3"

    async def list(self, prefix: str, start_after: str | None, limit: int) -> ObjectPage:
        args: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": prefix, "MaxKeys": limit}
        if start_after is not None:
            args["StartAfter"] = start_after
        client = await self._ready()
        page: dict[str, Any] = await self._call(lambda: client.list_objects_v2(**args))
        items = [
            ObjectInfo(str(item["Key"]), int(item["Size"]), item["LastModified"], item.get("ETag"))
            for item in page.get("Contents", [])
        ]
        return ObjectPage(items, items[-1].key if page.get("IsTruncated") and items else None)

    async def head(self, key: str) -> ObjectInfo | None:
        client = await self._ready()
        try:
            found: dict[str, Any] = await self._call(
                lambda: client.head_object(Bucket=self.config.bucket, Key=key), missing_ok=True
            )
        except NotFound:
            return None
        return ObjectInfo(
            key, int(found["ContentLength"]), found["LastModified"], found.get("ETag"), found.get("ContentType")
        )

    async def presign_get(self, key: str, expires_in: int) -> str:
        client = await self._ready()
        params = {"Bucket": self.config.bucket, "Key": key}
        return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    async def presign_put(self, key: str, content_type: str | None, expires_in: int) -> str:
        client = await self._ready()
        params = {"Bucket": self.config.bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type  # signed: an upload with another Content-Type is refused
        return str(client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in))

    async def delete(self, keys: Sequence[str]) -> dict[str, str]:
        client = await self._ready()
        request = {"Objects": [{"Key": key} for key in keys], "Quiet": True}
        answer: dict[str, Any] = await self._call(
            lambda: client.delete_objects(Bucket=self.config.bucket, Delete=request)
        )
        errors: list[dict[str, Any]] = answer.get("Errors", [])
        return {str(e.get("Key")): f"{e.get('Code')}: {str(e.get('Message', ''))[:200]}" for e in errors}

    async def check(self) -> None:
        """Whether the bucket answers with these credentials (STORAGE_CONFIG_SET asks before saving)."""
        client = await self._ready()
        await self._call(lambda: client.head_bucket(Bucket=self.config.bucket))

    async def _ready(self) -> Any:
        parts = urlsplit(self.config.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await self._addresses.resolve(parts.hostname or "", port)
        except AddressRefused as exc:
            raise StorageError(f"the object store at {self.config.endpoint} is not reachable from here: {exc}") from exc
        async with self._lock:
            if self._client is None:
                self._client = await asyncio.to_thread(self._new_client)
        return self._client

    def _new_client(self) -> Any:
        # Imported when first used (boto3 costs ~100 ms of start), as `Any`: the library ships no types.
        session: Any = importlib.import_module("boto3.session").Session()
        config = importlib.import_module("botocore.config").Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.config.path_style else "virtual"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )
        return session.client(
            "s3",
            endpoint_url=self.config.endpoint,
            region_name=self.config.region,
            aws_access_key_id=self.config.access_key_id,
            aws_secret_access_key=self.config.secret_access_key,
            config=config,
        )

    async def _call(self, action: Callable[[], T], *, missing_ok: bool = False) -> T:
        failures: Any = importlib.import_module("botocore.exceptions")
        client_error: type[Exception] = failures.ClientError
        library_error: type[Exception] = failures.BotoCoreError
        try:
            return await asyncio.to_thread(action)
        except client_error as exc:
            response: dict[str, Any] = getattr(exc, "response", {})
            error: dict[str, Any] = response.get("Error", {})
            code = str(error.get("Code", "?"))
            if missing_ok and code in _MISSING:
                raise NotFound("no such object") from exc
            raise StorageError(
                f"the object store at {self.config.endpoint} (bucket {self.config.bucket}) answered {code}:"
                f" {str(error.get('Message', ''))[:200]}"
            ) from exc
        except library_error as exc:
            raise StorageError(f"cannot use the object store at {self.config.endpoint}: {str(exc)[:200]}") from exc
