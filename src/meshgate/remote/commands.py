"""`meshgate login | logout | call | connections | keys | members | connect`: the gateway seen from afar.

Exit codes (see `meshgate.remote.errors`): 0 done, 1 refused by the gateway or the tool, 2 bad usage or
input, 3 not logged in / credentials refused, 4 gateway unreachable.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import click
import orjson

from meshgate import __version__
from meshgate.remote import oauth
from meshgate.remote.client import Authorizer, ManagementClient, http_client
from meshgate.remote.credentials import CredentialStore, ServerLogin, config_dir
from meshgate.remote.endpoints import parse_endpoint
from meshgate.remote.errors import BadInput, RemoteError
from meshgate.remote.output import render

P = ParamSpec("P")
R = TypeVar("R")
CONTEXT = {"help_option_names": ["-h", "--help"]}


def _store() -> CredentialStore:
    return CredentialStore(config_dir(os.environ))


def _stderr(text: str) -> None:
    click.echo(text, err=True)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A `RemoteError` ends the command with its message on stderr and its exit code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RemoteError as error:
            _stderr(f"error: {error.message}")
            sys.exit(error.exit_code)

    return wrapper


def gateway_options(command: Callable[P, R]) -> Callable[P, R]:
    """--url, --api-key and --output, shared by every command that calls the gateway."""
    command = click.option(
        "--output",
        "-o",
        type=click.Choice(["json", "table"]),
        default=None,
        help="Output format (default: table for people, json for `call`)",
    )(command)
    command = click.option(
        "--api-key", envvar="MESHGATE_API_KEY", default=None, help="Use this API key instead of the stored login"
    )(command)
    command = click.option(
        "--url", envvar="MESHGATE_URL", default=None, help="Gateway URL (default: the one logged in to last)"
    )(command)
    return click.version_option(__version__, "--version", message="%(version)s")(command)


def management(url: str | None, api_key: str | None) -> ManagementClient:
    """A client of `<gateway>/mcp` with the stored login (refreshed on use) or the given API key."""
    store = _store()
    if api_key is not None:
        if url is None:
            raise BadInput("--api-key needs --url (or MESHGATE_URL): which gateway is the key for?")
        base, login = parse_endpoint(url).base, None
    else:
        login = store.require(parse_endpoint(url).base if url else None)
        base = login.url
    http = http_client()
    endpoint = parse_endpoint(base)
    return ManagementClient(http, base, Authorizer(http, endpoint, store=store, login=login, api_key=api_key))


def show(value: Any, output: str | None, default: str = "table", columns: Sequence[str] | None = None) -> None:
    click.echo(render(value, output or default, columns))


# --- login ---------------------------------------------------------------------------------------------------


@click.command(context_settings=CONTEXT)
@click.argument("url")
@click.option("--api-key", default=None, help="Store this API key instead of logging in through the browser")
@click.option("--no-browser", is_flag=True, help="Only print the address to open (for a browser elsewhere)")
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait for the browser")
@click.version_option(__version__, "--version", message="%(version)s")
@reports_errors
def login(url: str, api_key: str | None, no_browser: bool, timeout: float) -> None:
    """Log in to the gateway at URL: OAuth in the browser (PKCE, a redirect to 127.0.0.1), or --api-key."""
    endpoint = parse_endpoint(url)
    store = _store()
    with http_client() as http:
        if api_key is not None:
            checked = ServerLogin(url=endpoint.base, api_key=api_key)
            client = ManagementClient(http, endpoint.base, Authorizer(http, endpoint, store=None, login=checked))
            client.tools()  # proves the key (401 → exit 3)
            store.save(checked, make_default=True)
        else:
            metadata = oauth.discover(http, endpoint.base)
            client_id = oauth.register_client(http, metadata)
            tokens = oauth.authorize(
                http, endpoint, metadata, client_id, show=_stderr, open_browser=not no_browser, timeout=timeout
            )
            kept = store.get(endpoint.base)
            fresh = ServerLogin(url=endpoint.base, client_id=client_id, tokens={endpoint.path: tokens})
            if kept is not None and kept.client_id == client_id:
                fresh.tokens = {**kept.tokens, endpoint.path: tokens}
            store.save(fresh, make_default=True)
    _stderr(f"logged in to {endpoint.base} (credentials in {store.path})")


@click.command(context_settings=CONTEXT)
@click.argument("url", required=False)
@click.version_option(__version__, "--version", message="%(version)s")
@reports_errors
def logout(url: str | None) -> None:
    """Forget the stored login for URL (default: the gateway logged in to last)."""
    store = _store()
    chosen = parse_endpoint(url).base if url else store.default_url()
    if chosen is None or not store.remove(chosen):
        raise RemoteError(f"not logged in to {chosen or 'any gateway'}")
    _stderr(f"logged out of {chosen}")


# --- call ------------------------------------------------------------------------------------------------------


def parse_arguments(raw_json: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """Tool arguments from --json and --arg k=v (a value that parses as JSON is taken as JSON, else as text)."""
    arguments: dict[str, Any] = {}
    if raw_json is not None:
        try:
            parsed = orjson.loads(raw_json)
        except orjson.JSONDecodeError as error:
            raise BadInput(f"--json is not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise BadInput('--json must be a JSON object of tool arguments, e.g. \'{"id": "..."}\'')
        arguments.update(parsed)  # pyright: ignore[reportUnknownArgumentType]
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--arg {pair!r} is not key=value")
        try:
            arguments[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            arguments[key] = value
    return arguments


@click.command(context_settings=CONTEXT)
@click.argument("tool")
@click.option("--json", "raw_json", default=None, help="Arguments as one JSON object")
@click.option("--arg", "pairs", multiple=True, help="One argument as key=value (repeatable; JSON values allowed)")
@gateway_options
@reports_errors
def call(
    *, tool: str, raw_json: str | None, pairs: tuple[str, ...], url: str | None, api_key: str | None, output: str | None
) -> None:
    """Call any management tool (COLLECTION_CONNECTIONS_LIST, API_KEY_CREATE, …) and print its result."""
    arguments = parse_arguments(raw_json, pairs)
    show(management(url, api_key).call(tool, arguments), output, default="json")


@click.command(context_settings=CONTEXT)
@gateway_options
@reports_errors
def tools(url: str | None, api_key: str | None, output: str | None) -> None:
    """List the management tools this login may call."""
    listed = management(url, api_key).tools()
    show([{"name": t.get("name"), "description": t.get("description")} for t in listed], output)


# --- friendly commands -----------------------------------------------------------------------------------------


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", message="%(version)s")
def connections() -> None:
    """List, create, test and delete connections."""


@connections.command("list", context_settings=CONTEXT)
@click.option("--limit", type=int, default=100, show_default=True)
@gateway_options
@reports_errors
def connections_list(limit: int, url: str | None, api_key: str | None, output: str | None) -> None:
    """List the organization's connections."""
    answer = management(url, api_key).call("COLLECTION_CONNECTIONS_LIST", {"limit": limit})
    show(answer, output, columns=["id", "title", "connection_type", "connection_url", "status"])


@connections.command("create", context_settings=CONTEXT)
@click.option("--title", required=True)
@click.option("--url", "connection_url", default=None, help="The upstream's MCP URL (HTTP and SSE)")
@click.option(
    "--type", "connection_type", type=click.Choice(["HTTP", "SSE", "STDIO"]), default="HTTP", show_default=True
)
@click.option("--token", default=None, help="Bearer token for the upstream (stored encrypted)")
@click.option("--header", "headers", multiple=True, help="Extra upstream header NAME=VALUE (repeatable)")
@click.option("--description", default=None)
@click.option("--gateway", "url", envvar="MESHGATE_URL", default=None, help="Gateway URL (default: last login)")
@click.option("--api-key", envvar="MESHGATE_API_KEY", default=None, help="Use this API key instead of the login")
@click.option("--output", "-o", type=click.Choice(["json", "table"]), default=None)
@click.version_option(__version__, "--version", message="%(version)s")
@reports_errors
def connections_create(
    *,
    title: str,
    connection_url: str | None,
    connection_type: str,
    token: str | None,
    headers: tuple[str, ...],
    description: str | None,
    url: str | None,
    api_key: str | None,
    output: str | None,
) -> None:
    """Create a connection to an upstream MCP server (here --url is the upstream; the gateway is --gateway)."""
    data: dict[str, Any] = {"title": title, "connection_type": connection_type}
    if connection_url is not None:
        data["connection_url"] = connection_url
    if token is not None:
        data["connection_token"] = token
    if description is not None:
        data["description"] = description
    if headers:
        pairs = [header.partition("=") for header in headers]
        if any(not sep or not name for name, sep, _ in pairs):
            raise BadInput("--header must be NAME=VALUE")
        data["connection_headers"] = {name: value for name, _, value in pairs}
    show(management(url, api_key).call("COLLECTION_CONNECTIONS_CREATE", {"data": data}), output)


@connections.command("test", context_settings=CONTEXT)
@click.argument("connection_id")
@gateway_options
@reports_errors
def connections_test(connection_id: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Check that a connection's upstream answers (exit 1 when it is unhealthy)."""
    answer = management(url, api_key).call("CONNECTION_TEST", {"id": connection_id})
    show(answer, output)
    if isinstance(answer, dict) and answer.get("healthy") is False:  # pyright: ignore[reportUnknownMemberType]
        sys.exit(1)


@connections.command("delete", context_settings=CONTEXT)
@click.argument("connection_id")
@gateway_options
@reports_errors
def connections_delete(connection_id: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Delete a connection."""
    show(management(url, api_key).call("COLLECTION_CONNECTIONS_DELETE", {"id": connection_id}), output)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", message="%(version)s")
def keys() -> None:
    """List, create and delete API keys."""


@keys.command("list", context_settings=CONTEXT)
@gateway_options
@reports_errors
def keys_list(url: str | None, api_key: str | None, output: str | None) -> None:
    """List API keys (never their values)."""
    show(management(url, api_key).call("API_KEY_LIST", {}), output, columns=["id", "name", "expiresAt", "lastUsedAt"])


@keys.command("create", context_settings=CONTEXT)
@click.argument("name")
@click.option("--expires-in", type=int, default=None, help="Lifetime in seconds (at least 300)")
@click.option("--permissions", default=None, help='Permission map as JSON, e.g. \'{"self": ["*"]}\'')
@gateway_options
@reports_errors
def keys_create(
    *,
    name: str,
    expires_in: int | None,
    permissions: str | None,
    url: str | None,
    api_key: str | None,
    output: str | None,
) -> None:
    """Create an API key; its value is printed only now."""
    arguments: dict[str, Any] = {"name": name}
    if expires_in is not None:
        arguments["expiresIn"] = expires_in
    if permissions is not None:
        arguments["permissions"] = parse_arguments(permissions, ())
    show(management(url, api_key).call("API_KEY_CREATE", arguments), output)


@keys.command("delete", context_settings=CONTEXT)
@click.argument("key_id")
@gateway_options
@reports_errors
def keys_delete(key_id: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Delete an API key."""
    show(management(url, api_key).call("API_KEY_DELETE", {"keyId": key_id}), output)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", message="%(version)s")
def members() -> None:
    """List, add and remove members of the organization, and change their roles."""


@members.command("list", context_settings=CONTEXT)
@gateway_options
@reports_errors
def members_list(url: str | None, api_key: str | None, output: str | None) -> None:
    """List the organization's members."""
    show(management(url, api_key).call("ORGANIZATION_MEMBER_LIST", {}), output)


@members.command("add", context_settings=CONTEXT)
@click.argument("email")
@click.option("--role", default="member", show_default=True)
@gateway_options
@reports_errors
def members_add(email: str, role: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Add an existing user (by email) to the organization."""
    show(management(url, api_key).call("ORGANIZATION_MEMBER_ADD", {"email": email, "role": role}), output)


@members.command("remove", context_settings=CONTEXT)
@click.argument("member_id")
@gateway_options
@reports_errors
def members_remove(member_id: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Remove a member."""
    show(management(url, api_key).call("ORGANIZATION_MEMBER_REMOVE", {"memberId": member_id}), output)


@members.command("set-role", context_settings=CONTEXT)
@click.argument("member_id")
@click.argument("role")
@gateway_options
@reports_errors
def members_set_role(member_id: str, role: str, url: str | None, api_key: str | None, output: str | None) -> None:
    """Change a member's role."""
    arguments = {"memberId": member_id, "role": role}
    show(management(url, api_key).call("ORGANIZATION_MEMBER_UPDATE_ROLE", arguments), output)


# --- connect -------------------------------------------------------------------------------------------------


@click.command(context_settings=CONTEXT)
@click.argument("url")
@click.option("--api-key", envvar="MESHGATE_API_KEY", default=None, help="Use this API key instead of the login")
@click.option("--no-browser", is_flag=True, help="If a login is needed, only print the address to open")
@click.version_option(__version__, "--version", message="%(version)s")
@reports_errors
def connect(url: str, api_key: str | None, no_browser: bool) -> None:
    """Speak MCP on stdin/stdout and forward it to the meshgate endpoint at URL (a connection's `/mcp/<id>`,
    a virtual MCP, or `/mcp`). Logs go to stderr; stdout carries only MCP messages."""
    from meshgate.remote.bridge import run_bridge  # noqa: PLC0415  (anyio and the bridge only for `connect`)

    run_bridge(parse_endpoint(url), _store(), api_key=api_key, open_browser=not no_browser, show=_stderr)


# --- logs ----------------------------------------------------------------------------------------------------


@click.command(context_settings=CONTEXT)
@click.option("--connection", "connection_id", default=None, help="Only calls of this connection")
@click.option("--tool", "tool_name", default=None, help="Only calls of this tool")
@click.option("--errors", is_flag=True, help="Only failed calls")
@click.option("--limit", type=int, default=20, show_default=True)
@gateway_options
@reports_errors
def logs(
    *,
    connection_id: str | None,
    tool_name: str | None,
    errors: bool,
    limit: int,
    url: str | None,
    api_key: str | None,
    output: str | None,
) -> None:
    """The newest entries of the audit log (MONITORING_LOGS_LIST)."""
    arguments: dict[str, Any] = {"limit": limit}
    if connection_id is not None:
        arguments["connectionId"] = connection_id
    if tool_name is not None:
        arguments["toolName"] = tool_name
    if errors:
        arguments["isError"] = True
    answer = management(url, api_key).call("MONITORING_LOGS_LIST", arguments)
    columns = ["createdAt", "toolName", "connectionId", "isError", "durationMs", "errorMessage"]
    show(answer, output, columns=columns)
