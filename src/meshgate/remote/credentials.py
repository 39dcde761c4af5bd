"""Where `meshgate login` keeps what it got: `$XDG_CONFIG_HOME/meshgate/credentials.json`, mode 0600.

One entry per gateway (its base URL): an API key, or the OAuth client meshgate registered for us and one
token set per MCP endpoint (access tokens are bound to the endpoint they were issued for, RFC 8707).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from meshgate.jsonvalues import as_dict
from meshgate.remote.errors import NotLoggedIn, RemoteError

FILE_NAME = "credentials.json"


def config_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/meshgate`, else `~/.config/meshgate` (the XDG base directory default)."""
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "meshgate"


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, raw: Any) -> TokenSet:
        if not isinstance(raw, dict) or not isinstance(raw.get("access_token"), str):  # pyright: ignore[reportUnknownMemberType]
            raise RemoteError("the stored token set is damaged; run `meshgate login` again")
        values: dict[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
        refresh = values.get("refresh_token")
        expires = values.get("expires_at")
        return cls(
            access_token=values["access_token"],
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=float(expires) if isinstance(expires, int | float) else None,
        )


@dataclass
class ServerLogin:
    """What we hold for one gateway."""

    url: str
    api_key: str | None = None
    client_id: str | None = None
    tokens: dict[str, TokenSet] = field(default_factory=dict[str, TokenSet])  # by endpoint path ("/mcp")

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "client_id": self.client_id,
            "tokens": {path: tokens.to_dict() for path, tokens in self.tokens.items()},
        }

    @classmethod
    def from_dict(cls, url: str, raw: dict[str, Any]) -> ServerLogin:
        tokens = raw.get("tokens")
        api_key, client_id = raw.get("api_key"), raw.get("client_id")
        return cls(
            url=url,
            api_key=api_key if isinstance(api_key, str) else None,
            client_id=client_id if isinstance(client_id, str) else None,
            tokens={str(k): TokenSet.from_dict(v) for k, v in tokens.items()} if isinstance(tokens, dict) else {},  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        )


class CredentialStore:
    """The credentials file: read whole, written whole (atomically, never readable by others)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def _read(self) -> dict[str, Any]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"servers": {}}
        except orjson.JSONDecodeError as error:
            raise RemoteError(f"{self.path} is not valid JSON ({error}); delete it and log in again") from error
        if not isinstance(raw, dict) or not isinstance(raw.get("servers"), dict):  # pyright: ignore[reportUnknownMemberType]
            raise RemoteError(f"{self.path} is not a meshgate credentials file; delete it and log in again")
        return raw  # pyright: ignore[reportUnknownVariableType]

    def _write(self, data: dict[str, Any]) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".credentials-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:  # mkstemp creates it 0600
                file.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
            os.chmod(temporary, 0o600)  # noqa: PTH101  (the path is a str from mkstemp)
            os.replace(temporary, self.path)  # noqa: PTH105
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)  # noqa: PTH108
            raise

    def default_url(self) -> str | None:
        value = self._read().get("default")
        return value if isinstance(value, str) else None

    def get(self, url: str) -> ServerLogin | None:
        raw = self._read()["servers"].get(url)
        return ServerLogin.from_dict(url, as_dict(raw)) if isinstance(raw, dict) else None

    def require(self, url: str | None) -> ServerLogin:
        """The login for `url` (or for the gateway logged in to last)."""
        chosen = url or self.default_url()
        if chosen is None:
            raise NotLoggedIn("not logged in: run `meshgate login URL` (or pass --url and --api-key)")
        login = self.get(chosen)
        if login is None:
            raise NotLoggedIn(f"not logged in to {chosen}: run `meshgate login {chosen}`")
        return login

    def save(self, login: ServerLogin, *, make_default: bool = False) -> None:
        data = self._read()
        data["servers"][login.url] = login.to_dict()
        if make_default or not isinstance(data.get("default"), str):
            data["default"] = login.url
        self._write(data)

    def remove(self, url: str) -> bool:
        data = self._read()
        if data["servers"].pop(url, None) is None:
            return False
        if data.get("default") == url:
            data["default"] = next(iter(data["servers"]), None)
        self._write(data)
        return True
