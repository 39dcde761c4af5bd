"""Object storage tools (`LIST_OBJECTS` … `DELETE_OBJECTS`, names as in MCP Mesh) and `STORAGE_CONFIG_*`."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

from meshgate.errors import StorageError
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec
from meshgate.storage.config import StorageSettingsService
from meshgate.storage.models import MAX_DELETE_KEYS, MAX_EXPIRES_S, MAX_LIMIT
from meshgate.storage.service import ObjectStorageService

_KEY = "Object key, e.g. reports/2026/q4.pdf ('/'-separated; no '..', no leading '/')"
_EXPIRES = f"Seconds the URL works, 1-{MAX_EXPIRES_S} (default 300)"


class ListObjectsInput(ToolInput):
    prefix: str | None = Field(default=None, max_length=1024, description="Only keys starting with this")
    # MCP Mesh's binding calls them continuationToken and maxKeys: both spellings are taken.
    cursor: str | None = Field(
        default=None,
        max_length=1024,
        validation_alias=AliasChoices("cursor", "continuationToken"),
        description="nextCursor of the previous page (also accepted as continuationToken)",
    )
    limit: int | None = Field(
        default=None,
        validation_alias=AliasChoices("limit", "maxKeys"),
        description=f"Objects per page, 1-{MAX_LIMIT} (default 100; also accepted as maxKeys)",
    )


class KeyInput(ToolInput):
    key: str = Field(max_length=1024, description=_KEY)


class GetUrlInput(ToolInput):
    key: str = Field(max_length=1024, description=_KEY)
    expiresIn: int | None = Field(default=None, description=_EXPIRES)  # noqa: N815  (camelCase like MCP Mesh)


class PutUrlInput(ToolInput):
    key: str = Field(max_length=1024, description=_KEY)
    contentType: str | None = Field(  # noqa: N815
        default=None, max_length=512, description="Media type the upload must be sent with (signed into the URL)"
    )
    expiresIn: int | None = Field(default=None, description=_EXPIRES)  # noqa: N815


class KeysInput(ToolInput):
    keys: list[str] = Field(max_length=MAX_DELETE_KEYS, description=f"1-{MAX_DELETE_KEYS} object keys")


class NoInput(ToolInput):
    pass


class ConfigSetInput(ToolInput):
    endpoint: str = Field(max_length=2048, description="S3 API root, e.g. https://s3.eu-west-1.amazonaws.com")
    bucket: str = Field(max_length=63, description="The bucket's name")
    region: str = Field(default="us-east-1", max_length=64, description="The bucket's region (signs the requests)")
    accessKeyId: str = Field(max_length=128, description="The access key id of meshgate's credential")  # noqa: N815
    secretAccessKey: str | None = Field(  # noqa: N815
        default=None, max_length=256, description="Write-only; leave out to keep the stored one"
    )
    pathStyle: bool = Field(  # noqa: N815
        default=True, description="Address the bucket as endpoint/bucket (MinIO, Ceph) rather than bucket.endpoint"
    )


def _objects(ctx: ToolContext) -> ObjectStorageService:
    runtime = ctx.runtime
    return ObjectStorageService(ctx.session, ctx.principal.organization_id, runtime.vault, runtime.storage)


def _settings(ctx: ToolContext) -> StorageSettingsService:
    return StorageSettingsService(ctx.session, ctx.principal.organization_id, ctx.runtime.vault)


async def list_objects(ctx: ToolContext, args: ListObjectsInput) -> Any:
    return await _objects(ctx).list(ctx.principal, args.prefix, args.cursor, args.limit)


async def object_metadata(ctx: ToolContext, args: KeyInput) -> Any:
    return await _objects(ctx).metadata(ctx.principal, args.key)


async def get_url(ctx: ToolContext, args: GetUrlInput) -> Any:
    return await _objects(ctx).presigned_get(ctx.principal, args.key, args.expiresIn)


async def put_url(ctx: ToolContext, args: PutUrlInput) -> Any:
    return await _objects(ctx).presigned_put(ctx.principal, args.key, args.contentType, args.expiresIn)


async def delete_object(ctx: ToolContext, args: KeyInput) -> Any:
    outcome = await _objects(ctx).delete(ctx.principal, [args.key])
    if outcome["errors"]:
        raise StorageError(f"the object store did not delete {args.key[:100]!r}: {outcome['errors'][0]['message']}")
    return {"key": args.key, "success": True}


async def delete_objects(ctx: ToolContext, args: KeysInput) -> Any:
    return await _objects(ctx).delete(ctx.principal, args.keys)


async def config_get(ctx: ToolContext, _args: NoInput) -> Any:
    return await _settings(ctx).get(ctx.principal)


async def config_set(ctx: ToolContext, args: ConfigSetInput) -> Any:
    settings = _settings(ctx)
    config = await settings.set(
        ctx.principal,
        endpoint=args.endpoint,
        bucket=args.bucket,
        region=args.region,
        access_key_id=args.accessKeyId,
        secret_access_key=args.secretAccessKey,
        path_style=args.pathStyle,
    )
    await ctx.runtime.storage.trial(config).check()  # a store that does not answer is not saved
    return await settings.save(ctx.principal, config)


async def config_clear(ctx: ToolContext, _args: NoInput) -> Any:
    return await _settings(ctx).clear(ctx.principal)


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "LIST_OBJECTS",
        "List the organization's stored objects in key order (key, size, lastModified, etag), a page at a time.",
        ListObjectsInput,
        list_objects,
        read_only=True,
    ),
    ToolSpec(
        "GET_OBJECT_METADATA",
        "An object's size, content type, ETag and last change.",
        KeyInput,
        object_metadata,
        read_only=True,
    ),
    ToolSpec(
        "GET_PRESIGNED_URL",
        "A short-lived URL that downloads an object with a plain GET, no other credential.",
        GetUrlInput,
        get_url,
        read_only=True,
    ),
    ToolSpec(
        "PUT_PRESIGNED_URL",
        "A short-lived URL that uploads an object with a plain PUT (send the returned headers with it).",
        PutUrlInput,
        put_url,
    ),
    ToolSpec("DELETE_OBJECT", "Delete one object (no error when it does not exist).", KeyInput, delete_object),
    ToolSpec("DELETE_OBJECTS", f"Delete up to {MAX_DELETE_KEYS} objects at once.", KeysInput, delete_objects),
    ToolSpec(
        "STORAGE_CONFIG_GET",
        "The organization's object store: its S3-compatible bucket, or the local directory (never the secret key).",
        NoInput,
        config_get,
        read_only=True,
    ),
    ToolSpec(
        "STORAGE_CONFIG_SET",
        "Use an S3-compatible bucket (AWS S3, MinIO, R2 …) for the organization's objects; the secret key is sealed"
        " in the vault. The bucket is tried first; owners and admins only.",
        ConfigSetInput,
        config_set,
    ),
    ToolSpec(
        "STORAGE_CONFIG_CLEAR",
        "Go back to the local directory store (objects in the bucket stay there); owners and admins only.",
        NoInput,
        config_clear,
    ),
]
