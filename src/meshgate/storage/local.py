"""The zero-configuration store: a directory under the data dir, its URLs signed and served by meshgate.

Layout under `root`: `data/<full key>` holds the bytes, `meta/<full key>` a JSON note of the content type and
ETag, `tmp/` uploads in progress (renamed into place when complete, so a reader never sees half an object).
A file system cannot hold both `a` and `a/b`; such a key is refused as a conflict. Filesystem calls run in
a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from meshgate.errors import Conflict, InvalidInput, PayloadTooLarge
from meshgate.storage.models import ObjectInfo, ObjectPage
from meshgate.storage.signing import UrlSigner

MAX_SEGMENT_BYTES = 255  # a file name on common file systems


class LocalDirectoryStore:
    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self._data = root / "data"
        self._meta = root / "meta"
        self._tmp = root / "tmp"
        self.signer = signer

    @property
    def kind(self) -> str:
        return "local"

    async def list(self, prefix: str, start_after: str | None, limit: int) -> ObjectPage:
        return await asyncio.to_thread(self._list, prefix, start_after, limit)

    async def head(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._head, key)

    async def presign_get(self, key: str, expires_in: int) -> str:
        return self.signer.url("GET", key, expires_in)

    async def presign_put(self, key: str, content_type: str | None, expires_in: int) -> str:
        if any(len(segment.encode()) > MAX_SEGMENT_BYTES for segment in key.split("/")):
            raise InvalidInput(f"each '/'-separated part of a key is at most {MAX_SEGMENT_BYTES} bytes here")
        await asyncio.to_thread(self._check_free, key)
        return self.signer.url("PUT", key, expires_in, content_type)

    async def delete(self, keys: Sequence[str]) -> dict[str, str]:
        await asyncio.to_thread(self._delete, keys)
        return {}

    def file(self, key: str) -> Path:
        """Where the object's bytes are (the route serves it)."""
        return self._path(self._data, key)

    async def write(self, key: str, body: AsyncIterator[bytes], content_type: str | None, max_bytes: int) -> ObjectInfo:
        """Store an upload; PayloadTooLarge (and nothing kept) when it passes `max_bytes`."""
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)
        partial = self._tmp / f"upload-{secrets.token_hex(8)}"
        digest, size = hashlib.sha256(), 0
        try:
            handle = await asyncio.to_thread(partial.open, "wb")
            try:
                async for chunk in body:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"the object is larger than {max_bytes} bytes, the most this store takes")
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
            etag = f'"{digest.hexdigest()[:32]}"'
            await asyncio.to_thread(self._place, partial, key, content_type, etag)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(partial.unlink)
        return ObjectInfo(key, size, datetime.now(UTC), etag, content_type)

    def _path(self, tree: Path, key: str) -> Path:
        path = tree.joinpath(*key.split("/"))
        if not path.resolve().is_relative_to(tree.resolve()):  # keys are checked before; this is the backstop
            raise InvalidInput(f"key {key[:100]!r} leaves the store's directory")
        return path

    def _check_free(self, key: str) -> None:
        path = self._path(self._data, key)
        if path.is_dir():
            raise Conflict(f"key {key.partition('/')[2][:100]!r} is a folder of other objects here; choose another key")
        for parent in path.parents:
            if parent == self._data:
                break
            if parent.is_file():
                name = parent.relative_to(self._data).as_posix().partition("/")[2]
                raise Conflict(f"{name[:100]!r} is an object, so it cannot be a folder here; choose another key")

    def _place(self, partial: Path, key: str, content_type: str | None, etag: str) -> None:
        self._check_free(key)
        target, note = self._path(self._data, key), self._path(self._meta, key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_bytes(orjson.dumps({"contentType": content_type, "etag": etag}))
            partial.replace(target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise Conflict(f"key {key.partition('/')[2][:100]!r} conflicts with another object's folder") from exc

    def _head(self, key: str) -> ObjectInfo | None:
        path = self._path(self._data, key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        note: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, orjson.JSONDecodeError):
            note = orjson.loads(self._path(self._meta, key).read_bytes())
        when = datetime.fromtimestamp(stat.st_mtime, UTC)
        return ObjectInfo(key, stat.st_size, when, note.get("etag"), note.get("contentType"))

    def _list(self, prefix: str, start_after: str | None, limit: int) -> ObjectPage:
        folder = prefix.rpartition("/")[0]
        base = self._path(self._data, folder) if folder else self._data
        keys: list[str] = []
        for directory, _dirs, files in os.walk(base):
            relative = Path(directory).relative_to(self._data).as_posix()
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix) and (start_after is None or key > start_after):
                    keys.append(key)
        keys.sort()
        items = [info for key in keys[:limit] if (info := self._head(key)) is not None]
        return ObjectPage(items, keys[limit - 1] if len(keys) > limit else None)

    def _delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            for tree in (self._data, self._meta):
                path = self._path(tree, key)
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    path.unlink()
                for parent in path.parents:  # drop folders left empty, up to the organization's own
                    if tree in (parent, parent.parent):
                        break
                    try:
                        parent.rmdir()
                    except OSError:
                        break
