"""The seam between the object service and where the bytes live: an S3-compatible store or a local directory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meshgate.storage.models import ObjectInfo, ObjectPage


class ObjectStore(Protocol):
    """Operations on full keys (the organization's prefix included); the service checks and prefixes them."""

    @property
    def kind(self) -> str:
        """`s3` or `local`."""
        ...

    async def list(self, prefix: str, start_after: str | None, limit: int) -> ObjectPage:
        """Up to `limit` objects whose key starts with `prefix`, in key order, after `start_after`."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when there is none."""
        ...

    async def presign_get(self, key: str, expires_in: int) -> str:
        """A URL that downloads the object for `expires_in` seconds, with no other credential."""
        ...

    async def presign_put(self, key: str, content_type: str | None, expires_in: int) -> str:
        """A URL that uploads the object (with exactly `content_type` when given) for `expires_in` seconds."""
        ...

    async def delete(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove the objects; the ones that could not be removed, with the store's reason, by key. Keys that
        do not exist are no error (as in S3)."""
        ...
