"""The `meshgate` command: serve, migrate, bootstrap, version; and, loaded only when run, the remote commands
(login, call, connections, keys, members, connect) from `meshgate.remote.commands`."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Generator
from pathlib import Path
from types import FrameType

import click
import orjson
import uvicorn

from meshgate import __version__, datadir
from meshgate.bootstrap import BootstrapResult, bootstrap_owner
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.errors import MeshgateError
from meshgate.keycheck import verify_vault_key
from meshgate.observability.logs import configure_logging, uvicorn_log_config
from meshgate.rotation import rotate_secrets
from meshgate.settings import Settings, load_settings, with_overrides
from meshgate.vault import Vault, key_id

log = logging.getLogger("meshgate")


def _configure_logging(level: str, log_format: str = "auto") -> None:
    configure_logging(level, log_format)


def _settings(data_dir: Path | None = None) -> Settings:
    env = os.environ if data_dir is None else {**os.environ, "MESHGATE_DATA_DIR": str(data_dir)}
    try:
        return load_settings(env)
    except MeshgateError as error:
        raise click.ClickException(error.message) from error


async def _prepare(settings: Settings) -> list[str]:
    """Apply pending migrations and check the vault key; returns the migrations applied."""
    datadir.record(os.environ, settings.data_dir)
    db = Database(settings.database_url)
    try:
        applied = await apply_migrations(db.engine)
        await verify_vault_key(db, Vault(settings.encryption_key, previous=settings.previous_encryption_keys))
    finally:
        await db.close()
    return applied


def _run(coro_factory: object) -> object:
    try:
        return asyncio.run(coro_factory)  # type: ignore[arg-type]
    except MeshgateError as error:
        raise click.ClickException(error.message) from error
    except OSError as error:
        raise click.ClickException(f"cannot reach the database: {error}") from error


# Remote commands live in `meshgate.remote` and import an HTTP client; `serve` must not pay for them.
_REMOTE_COMMANDS = {
    "login": "Log in to a gateway (OAuth in the browser, or --api-key)",
    "logout": "Forget the stored login of a gateway",
    "call": "Call any management tool of a gateway",
    "tools": "List the management tools this login may call",
    "connections": "List, create, test and delete connections",
    "keys": "List, create and delete API keys",
    "members": "List, add and remove members",
    "logs": "Show the newest audit log entries",
    "connect": "Bridge MCP over stdio to a meshgate endpoint",
}


class _Commands(click.Group):
    """A group whose remote commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_REMOTE_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _REMOTE_COMMANDS:
            command: click.Command = getattr(importlib.import_module("meshgate.remote.commands"), cmd_name)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """`meshgate --help` lists the remote commands by their one-line help, without importing them."""
        rows = [(name, command.get_short_help_str(60)) for name, command in self.commands.items()]
        rows.extend(_REMOTE_COMMANDS.items())
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(version)s")
def main() -> None:
    """meshgate: a self-hostable MCP gateway.

    Exit codes of the remote commands: 0 done, 1 refused by the gateway or the tool, 2 bad usage or input,
    3 not logged in or credentials refused, 4 gateway unreachable.
    """


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    _configure_logging("INFO")
    settings = _settings()
    applied = _run(_prepare(settings))
    click.echo(f"applied {len(applied)} migration(s)" if applied else "database is up to date")  # type: ignore[arg-type]


class _GatewayServer(uvicorn.Server):
    """uvicorn server that marks the app as shutting down as soon as a signal arrives."""

    def __init__(self, config: uvicorn.Config, app_state: object) -> None:
        super().__init__(config)
        self._app_state = app_state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app_state.shutting_down = True  # type: ignore[attr-defined]
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        # uvicorn re-raises the signal after a graceful stop; a completed graceful stop exits 0 here.
        with super().capture_signals():
            yield
            graceful = bool(self._captured_signals)
            self._captured_signals.clear()
        if graceful:
            # Stopped and drained: a repeated SIGTERM during interpreter teardown must not turn the clean exit
            # into a signal death.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


@main.command()
@click.option("--host", default=None, help="Listen address (default: HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="Listen port (default: PORT or 3000)")
@click.option("--local-mode", is_flag=True, help="Allow STDIO connections (runs local commands)")
def serve(host: str | None, port: int | None, local_mode: bool) -> None:
    """Apply pending migrations, then serve until SIGTERM or Ctrl-C (in-flight requests finish)."""
    settings = with_overrides(_settings(), host=host, port=port, local_mode=local_mode)
    _configure_logging(settings.log_level, settings.log_format)
    applied = _run(_prepare(settings))
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))  # type: ignore[arg-type]
    from meshgate.app import create_app  # noqa: PLC0415  (the MCP SDK behind it costs >1 s; only serve needs it)

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,  # URLs come from MESHGATE_PUBLIC_URL; X-Forwarded-* would only cost time
        access_log=settings.access_log,
        log_config=uvicorn_log_config(),
        lifespan="on",
    )
    log.info("meshgate %s listening on http://%s:%s", __version__, settings.host, settings.port)
    _GatewayServer(config, app.state).run()


@main.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret under ENCRYPTION_KEY (old keys in ENCRYPTION_KEYS_PREVIOUS)."""
    _configure_logging("WARNING")
    settings = _settings()
    if not settings.previous_encryption_keys:
        click.echo("note: ENCRYPTION_KEYS_PREVIOUS is empty; only values already under ENCRYPTION_KEY can be read")
    _run(_prepare(settings))

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            vault = Vault(settings.encryption_key, previous=settings.previous_encryption_keys)
            return await rotate_secrets(
                db, vault, lambda done, total: click.echo(f"checked {done}/{total} sealed values")
            )
        finally:
            await db.close()

    resealed = _run(run())
    click.echo(f"re-encrypted {resealed} secret(s) under key {key_id(settings.encryption_key)}")


@main.command()
@click.option("--email", required=True, help="Email of the first user")
@click.option("--password", default=None, help="Password for browser login (optional)")
@click.option("--org", "org_name", default="Default", show_default=True, help="Name of the organization")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line")
def bootstrap(email: str, password: str | None, org_name: str, as_json: bool) -> None:
    """Create a user, an organization they own and an owner API key (printed once)."""
    _configure_logging("WARNING")
    choice = datadir.choose(os.environ, Path.cwd())
    click.echo(choice.note, err=True)
    settings = _settings(choice.data_dir)
    _run(_prepare(settings))
    result = _run(bootstrap_owner(settings.database_url, email=email, password=password, org_name=org_name))
    if not isinstance(result, BootstrapResult):  # pragma: no cover  (narrowing for the type checker)
        raise click.ClickException("bootstrap did not complete")
    if as_json:
        click.echo(orjson.dumps(result.to_dict()).decode())
        return
    click.echo(f"user:         {result.user_id} ({email})")
    click.echo(f"organization: {result.organization_slug} ({result.organization_id})")
    click.echo(f"api key:      {result.api_key}")
    click.echo("The API key is shown only now; store it somewhere safe.")


@main.group()
def user() -> None:
    """Manage user accounts."""


@user.command("set-password")
@click.argument("email")
def user_set_password(email: str) -> None:
    """Set the password of EMAIL, read from the terminal (or stdin), never from the command line.

    Every browser session of the account ends."""
    _configure_logging("WARNING")
    settings = _settings()
    _run(_prepare(settings))
    password = click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    from meshgate.identity.accounts import set_password  # noqa: PLC0415  (keeps `meshgate version` fast)

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            await set_password(db, email, str(password))
        finally:
            await db.close()

    _run(run())
    click.echo(f"password set for {email.strip().lower()}; its browser sessions were ended")


signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
