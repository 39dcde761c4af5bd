"""Management tools for connections (names and inputs follow MCP Mesh)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from meshgate.connections.addresses import AddressRefused
from meshgate.connections.discovery import discover_once, ping
from meshgate.connections.inputs import (
    ConfigureInput,
    ConnectionDataInput,
    CreateInput,
    IdInput,
    ListInput,
    OAuthInput,
    StdioInput,
    UpdateInput,
    check_headers,
)
from meshgate.connections.models import (
    DEFAULT_CALL_TIMEOUT_MS,
    DEFAULT_CONNECT_TIMEOUT_MS,
    Connection,
    ConnectionSecrets,
    Discovery,
    UpstreamConfig,
)
from meshgate.connections.service import ConnectionService
from meshgate.connections.upstream_tokens import UpstreamTokenStore
from meshgate.errors import InvalidInput, UpstreamError
from meshgate.mcp.registry import ToolContext, ToolSpec

_SECRET_FIELDS = ("connection_token", "connection_headers", "configuration_state", "oauth")
NEEDS_AUTHORIZATION = "OAuth authorization needed: call CONNECTION_OAUTH_START and open the URL it returns"


def _service(ctx: ToolContext) -> ConnectionService:
    return ConnectionService(ctx.session, ctx.principal.organization_id, ctx.runtime.vault)


def _check_type(ctx: ToolContext, connection_type: str, url: str | None) -> None:
    if connection_type == "STDIO":
        if not ctx.runtime.settings.local_mode:
            raise InvalidInput(
                "STDIO connections run local commands and need meshgate serve --local-mode (MESHGATE_LOCAL_MODE=1)"
            )
        return
    if url is None:
        raise InvalidInput(f"connection_url is required for {connection_type} connections")


def _secrets(
    data: ConnectionDataInput, connection_type: str, current: ConnectionSecrets | None = None
) -> ConnectionSecrets:
    """Secrets after applying `data`: a field given replaces, a field given as null clears, absent keeps.
    For STDIO connections `connection_headers` holds the command: {command, args?, cwd?, envVars?}."""
    given = data.model_fields_set
    base = current or ConnectionSecrets()
    headers, stdio = base.headers, base.stdio
    if "connection_headers" in given and connection_type == "STDIO":
        try:
            command = StdioInput.model_validate(data.connection_headers or {})
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "connection_headers"
            raise InvalidInput(
                f"connection_headers for STDIO must be {{command, args?, cwd?, envVars?}}: {where}: {problem['msg']}"
            ) from exc
        stored_env: Mapping[str, str] = {} if base.stdio is None else base.stdio.get("envVars") or {}
        env = _kept(command.envVars, stored_env, "connection_headers.envVars")
        stdio = {**command.model_dump(), "envVars": env}
    elif "connection_headers" in given:
        try:
            given_headers = check_headers(data.connection_headers or {})
        except ValueError as exc:
            raise InvalidInput(f"connection_headers: {exc}") from exc
        headers = _kept(given_headers, base.headers, "connection_headers")
    if connection_type == "STDIO" and stdio is None:
        raise InvalidInput("connection_headers is required for STDIO connections: {command, args?, cwd?, envVars?}")
    return ConnectionSecrets(
        token=data.connection_token if "connection_token" in given else base.token,
        headers=headers,
        stdio=stdio,
        configuration_state=data.configuration_state if "configuration_state" in given else base.configuration_state,
        oauth=(None if data.oauth is None else _oauth(data.oauth, base.oauth)) if "oauth" in given else base.oauth,
    )


def _oauth(given: OAuthInput, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The OAuth setup `given`; a client_secret given as null keeps the stored one (a new scope, same client)."""
    oauth = given.model_dump(exclude_none=True)
    if "client_secret" in given.model_fields_set and given.client_secret is None:
        kept = None if stored is None else stored.get("client_secret")
        if kept is None:
            raise InvalidInput(
                "oauth.client_secret: null keeps the stored value, but none is stored (give the value; "
                "secrets are also dropped when connection_url moves to another origin)"
            )
        oauth["client_secret"] = kept
    return oauth


def _kept(given: Mapping[str, str | None], stored: Mapping[str, str], where: str) -> dict[str, str]:
    """`given` with each null value replaced by the stored value of that name (a secret kept without retyping)."""
    resolved: dict[str, str] = {}
    for name, value in given.items():
        if value is None and name not in stored:
            raise InvalidInput(
                f"{where}.{name[:60]}: null keeps the stored value, but none is stored (give the value; "
                "secrets are also dropped when connection_url moves to another origin)"
            )
        resolved[name] = stored[name] if value is None else value
    return resolved


def _values(data: ConnectionDataInput) -> dict[str, Any]:
    """Non-secret columns that `data` sets."""
    return {name: getattr(data, name) for name in data.model_fields_set if name not in _SECRET_FIELDS}


async def _check_address(ctx: ToolContext, url: str | None) -> None:
    """Refuse URLs that point at link-local or metadata addresses (or private ones, when configured)."""
    if url is None:
        return
    parts = urlsplit(url)
    try:
        await ctx.runtime.upstreams.addresses.resolve(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        )
    except AddressRefused as refused:
        raise InvalidInput(f"connection_url is not allowed: {refused}") from refused


async def _probe(ctx: ToolContext, config: UpstreamConfig) -> tuple[Discovery | None, str | None]:
    """Contact a server with a throw-away client; an unreachable server is an answer, not an error."""
    try:
        return await discover_once(config, ctx.runtime.upstreams.addresses, ctx.runtime.upstreams.stdio), None
    except UpstreamError as error:
        return None, error.message


async def connection_create(ctx: ToolContext, args: CreateInput) -> Any:
    data = args.data
    if not data.title:
        raise InvalidInput("data.title is required")
    if data.connection_type is None:
        raise InvalidInput("data.connection_type is required: HTTP, SSE or STDIO")
    _check_type(ctx, data.connection_type, data.connection_url)
    secrets = _secrets(data, data.connection_type)
    values = _values(data)
    values.setdefault("status", "active")
    values.setdefault("connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS)
    values.setdefault("call_timeout_ms", DEFAULT_CALL_TIMEOUT_MS)
    await _check_address(ctx, data.connection_url)
    if secrets.oauth is not None:
        # Nothing to discover before the server has authorized meshgate (CONNECTION_OAUTH_START).
        values["status_reason"] = NEEDS_AUTHORIZATION
        return (await _service(ctx).create(values, secrets, ctx.principal.user_id)).to_dict()
    found, error = await _probe(
        ctx,
        UpstreamConfig(
            id="new",
            organization_id=ctx.principal.organization_id,
            title=data.title,
            connection_type=data.connection_type,
            url=data.connection_url,
            status=values["status"],
            secrets=secrets,
            connect_timeout_ms=values["connect_timeout_ms"],
            call_timeout_ms=values["call_timeout_ms"],
        ),
    )
    if found is None:
        values.update(status="error", status_reason=error)
    else:
        values.update(server_info=found.server_info, instructions=found.instructions, tools=found.tools)
    service = _service(ctx)
    return (await service.create(values, secrets, ctx.principal.user_id)).to_dict()


def _shown(ctx: ToolContext, connections: list[Connection]) -> list[dict[str, Any]]:
    """Reads of connections, with what this process's calls found since the status was stored (a stored
    change replaces the process's client): an active connection whose last call here could not reach its
    server shows `error` and why. CONNECTION_TEST stores the state it finds, for every process."""
    failing = {
        client.config.id: client.breaker.last_error
        for client in ctx.runtime.upstreams.clients()
        if client.breaker.reachable is False
    }
    shown: list[dict[str, Any]] = []
    for connection in connections:
        item = connection.to_dict()
        reason = failing.get(connection.id)
        if reason is not None and connection.status == "active":
            item.update(status="error", status_reason=f"calls to the server are failing: {reason}")
        shown.append(item)
    return shown


async def connection_list(ctx: ToolContext, args: ListInput) -> Any:
    order: list[Mapping[str, Any]] | None = None if args.orderBy is None else list(args.orderBy)
    items, total = await _service(ctx).list(where=args.where, order=order, limit=args.limit, offset=args.offset)
    return {
        "items": _shown(ctx, items),
        "totalCount": total,
        "hasMore": args.offset + len(items) < total,
    }


async def connection_get(ctx: ToolContext, args: IdInput) -> Any:
    return _shown(ctx, [await _service(ctx).get(args.id)])[0]


async def connection_update(ctx: ToolContext, args: UpdateInput) -> Any:
    service = _service(ctx)
    current = await service.get(args.id)
    data = args.data
    connection_type = data.connection_type or current.connection_type
    url = data.connection_url if "connection_url" in data.model_fields_set else current.connection_url
    _check_type(ctx, connection_type, url)
    given = data.model_fields_set
    stored, dropped = await service.secrets_for_url(args.id, url)
    secrets = _secrets(data, connection_type, stored)
    supplied = {"oauth.client_secret": "oauth"}
    dropped = tuple(name for name in dropped if supplied.get(name, name) not in given)
    values = _values(data)
    reachability = {"connection_url", "connection_token", "connection_headers", "connect_timeout_ms"}
    if "oauth" in data.model_fields_set or (secrets.oauth is not None and "connection_url" in data.model_fields_set):
        # A new OAuth setup or server invalidates the tokens held for the old one.
        await UpstreamTokenStore(ctx.session, ctx.runtime.vault).forget(args.id)
        if secrets.oauth is not None:
            values["status_reason"] = NEEDS_AUTHORIZATION
    if reachability & data.model_fields_set:
        await _check_address(ctx, url)
    if reachability & data.model_fields_set and secrets.oauth is None:
        found, error = await _probe(
            ctx,
            UpstreamConfig(
                id=current.id,
                organization_id=current.organization_id,
                title=data.title or current.title,
                connection_type=connection_type,
                url=url,
                status=current.status,
                secrets=secrets,
                connect_timeout_ms=data.connect_timeout_ms or current.connect_timeout_ms,
                call_timeout_ms=data.call_timeout_ms or current.call_timeout_ms,
            ),
        )
        if found is None:
            values.update(status="error", status_reason=error)
        else:
            values.update(server_info=found.server_info, instructions=found.instructions, tools=found.tools)
            values.setdefault("status", "active" if current.status == "error" else current.status)
            values["status_reason"] = None
    secret_changed = bool(set(_SECRET_FIELDS) & given) or bool(dropped)
    updated = await service.update(args.id, values, secrets if secret_changed else None, dropped=dropped)
    return updated.to_dict()


async def connection_delete(ctx: ToolContext, args: IdInput) -> Any:
    return {**(await _service(ctx).delete(args.id)).to_dict(), "deleted": True}


async def connection_test(ctx: ToolContext, args: IdInput) -> Any:
    """Ping the server and keep what was found as the connection's status (error with its reason, or active)."""
    service = _service(ctx)
    await service.get(args.id)
    client = await ctx.runtime.upstreams.get(ctx.principal.organization_id, args.id)
    try:
        latency = await ping(client)
    except UpstreamError as error:
        await service.record_health(args.id, error.message)
        return {"id": args.id, "healthy": False, "latencyMs": None, "error": error.message}
    await service.record_health(args.id, None)
    return {"id": args.id, "healthy": True, "latencyMs": latency}


async def connection_configure(ctx: ToolContext, args: ConfigureInput) -> Any:
    service = _service(ctx)
    current = await service.secrets(args.id)
    secrets = replace(current, configuration_state=args.state)
    updated = await service.update(args.id, {"configuration_scopes": args.scopes}, secrets)
    return updated.to_dict()


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "COLLECTION_CONNECTIONS_CREATE",
        "Register an MCP server; meshgate contacts it and stores its tools.",
        CreateInput,
        connection_create,
    ),
    ToolSpec(
        "COLLECTION_CONNECTIONS_LIST",
        "List connections with where, orderBy, limit (<=1000) and offset.",
        ListInput,
        connection_list,
        read_only=True,
    ),
    ToolSpec(
        "COLLECTION_CONNECTIONS_GET",
        "Get a connection (secrets show only whether they are set).",
        IdInput,
        connection_get,
        read_only=True,
    ),
    ToolSpec(
        "COLLECTION_CONNECTIONS_UPDATE",
        "Change a connection; a changed address or credential is re-checked.",
        UpdateInput,
        connection_update,
    ),
    ToolSpec("COLLECTION_CONNECTIONS_DELETE", "Delete a connection.", IdInput, connection_delete),
    ToolSpec(
        "CONNECTION_TEST",
        "Ping the server: {id, healthy, latencyMs, error?}; the connection's status then shows what was found.",
        IdInput,
        connection_test,  # not read-only: it records the status it found
    ),
    ToolSpec(
        "CONNECTION_CONFIGURE",
        "Store the server's configuration state and scopes.",
        ConfigureInput,
        connection_configure,
    ),
]
