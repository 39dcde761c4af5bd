"""The stores of every organization in this process: the shared local directory and a client per S3 config."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from meshgate.connections.addresses import AddressPolicy
from meshgate.storage.backend import ObjectStore
from meshgate.storage.local import LocalDirectoryStore
from meshgate.storage.s3 import S3Config, S3Store
from meshgate.storage.signing import UrlSigner

MAX_CLIENTS = 256  # S3 clients kept (each holds a connection pool); the least recently used goes first


class ObjectStores:
    def __init__(
        self,
        root: Path,
        secret: bytes,
        public_url: str,
        addresses: AddressPolicy,
        *,
        max_object_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.local = LocalDirectoryStore(root, UrlSigner(secret, public_url, clock))
        self.max_object_bytes = max_object_bytes
        self.clock = clock
        self._addresses = addresses
        self._s3: OrderedDict[str, S3Store] = OrderedDict()

    def for_organization(self, organization_id: str, config: S3Config | None) -> ObjectStore:
        """The organization's store: its S3 bucket when configured (one client per config), else the local one."""
        if config is None:
            self._s3.pop(organization_id, None)
            return self.local
        store = self._s3.get(organization_id)
        if store is None or store.config != config:
            store = self._s3[organization_id] = S3Store(config, self._addresses)
        self._s3.move_to_end(organization_id)
        while len(self._s3) > MAX_CLIENTS:
            self._s3.popitem(last=False)
        return store

    def trial(self, config: S3Config) -> S3Store:
        """A store for a config not saved yet (STORAGE_CONFIG_SET tries it first)."""
        return S3Store(config, self._addresses)
