"""Settings: read once from the environment at the edge (CLI), then passed down as one object."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from meshgate.access.ratelimit import Rate
from meshgate.auth_config import AuthConfig, load_auth_config
from meshgate.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_LOGIN_RATE_ADDRESS = Rate(per_second=10 / 60, burst=30)  # failed logins per client address
DEFAULT_LOGIN_RATE_ACCOUNT = Rate(per_second=2 / 60, burst=10)  # failed logins per account (email)
DEFAULT_MAIL_RATE_ADDRESS = Rate(per_second=1 / 300, burst=3)  # sign-in and reset links mailed per address
DEFAULT_MAIL_RATE_CLIENT = Rate(per_second=10 / 900, burst=10)  # sign-in and reset links asked per client address
DEFAULT_OAUTH_DOCUMENT_RATE = Rate(per_second=10 / 60, burst=20)  # client metadata document fetches per address
DEFAULT_OAUTH_REGISTER_RATE = Rate(per_second=60 / 3600, burst=30)  # dynamic client registrations per address
_KEY_FILE = "encryption.key"
_SECRET_FILE = "secret.key"  # noqa: S105  (a file name, not a secret)


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Hard limits of one JavaScript run (`meshgate.sandbox`) and how many run at once per process."""

    memory_bytes: int = 64 << 20
    cpu_seconds: float = 5.0
    wall_seconds: float = 30.0
    output_bytes: int = 1 << 20
    tool_calls: int = 200
    concurrent: int = 4


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything meshgate needs to know about its environment."""

    database_url: str
    data_dir: Path
    encryption_key: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 3000
    public_url: str = "http://127.0.0.1:3000"
    local_mode: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "INFO"
    key_usage_flush_seconds: float = 10.0
    previous_encryption_keys: tuple[bytes, ...] = field(default=(), repr=False)
    access_log: bool = False
    block_private_networks: bool = False
    github_url: str = "https://github.com"  # the GitHub SSO preset's OAuth endpoints live here
    github_api_url: str = "https://api.github.com"
    rate_limit_key: Rate | None = None
    rate_limit_organization: Rate | None = None
    login_rate_address: Rate = DEFAULT_LOGIN_RATE_ADDRESS
    login_rate_account: Rate = DEFAULT_LOGIN_RATE_ACCOUNT
    mail_rate_address: Rate = DEFAULT_MAIL_RATE_ADDRESS
    mail_rate_client: Rate = DEFAULT_MAIL_RATE_CLIENT
    oauth_document_rate: Rate = DEFAULT_OAUTH_DOCUMENT_RATE
    oauth_register_rate: Rate = DEFAULT_OAUTH_REGISTER_RATE
    oauth_register_per_day: int = 200
    replica_heartbeat_seconds: float = 5.0
    log_format: str = "auto"
    tracing_enabled: bool = True
    otel_sampler: str = "parentbased_traceidratio"
    otel_sampler_arg: float = 0.1
    otlp_traces_endpoint: str | None = None
    otlp_headers: tuple[tuple[str, str], ...] = ()
    otel_service_name: str = "meshgate"
    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    metrics_open: bool = False  # serve /metrics without a token (the operator's explicit choice)
    oauth_access_token_seconds: int = 900
    oauth_refresh_token_seconds: int = 30 * 24 * 3600
    session_seconds: int = 12 * 3600
    stdio_max_processes: int = 20
    stdio_idle_seconds: float = 600.0
    upstream_sessions_max: int = 100
    upstream_session_idle_seconds: float = 300.0
    virtual_list_ttl_seconds: float = 300.0
    virtual_list_timeout_seconds: float = 5.0
    ai_timeout_seconds: float = 120.0  # an AI provider's answer head, and each pause in a streamed answer
    ai_models_ttl_seconds: float = 300.0  # how long a provider's model listing is kept
    ai_rate_limit_key: Rate | None = None  # AI requests per API key or OAuth grant (on top of the general limits)
    ai_rate_limit_organization: Rate | None = None
    ai_token_budget_key: Rate | None = None  # AI tokens (in + out) per API key or OAuth grant, e.g. 100000/day
    ai_token_budget_organization: Rate | None = None
    event_delivery: bool = True  # off: this process publishes but leaves deliveries to the other processes
    event_batch_size: int = 50
    event_retry_first_seconds: float = 1.0
    event_retry_max_seconds: float = 3600.0
    event_max_attempts: int = 20
    event_lease_seconds: float = 60.0
    event_poll_seconds: float = 30.0
    auth_config: AuthConfig = field(default_factory=AuthConfig)  # MESHGATE_AUTH_CONFIG, checked at start
    connection_token_seconds: int = 900  # lifetime of the credential an upstream calls meshgate back with
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    storage_max_object_bytes: int = 100 << 20  # an upload to the local object store


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment, generating missing secrets into the data dir."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("MESHGATE_DATA_DIR", "./data")).resolve()
    host = env.get("HOST", "127.0.0.1")
    port = _int(env, "PORT", 3000)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'meshgate.db'}"
    if database_url.startswith("sqlite"):
        make_private_dir(data_dir)
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        encryption_key=_encryption_key(env, data_dir),
        secret=_secret(env, data_dir),
        host=host,
        port=port,
        public_url=env.get("MESHGATE_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
        local_mode=_flag(env, "MESHGATE_LOCAL_MODE"),
        allowed_hosts=_csv(env, "MESHGATE_ALLOWED_HOSTS"),
        allowed_origins=_csv(env, "MESHGATE_ALLOWED_ORIGINS"),
        max_body_bytes=_int(env, "MESHGATE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        key_usage_flush_seconds=float(env.get("MESHGATE_KEY_USAGE_FLUSH_SECONDS", "10")),
        access_log=_flag(env, "MESHGATE_ACCESS_LOG"),
        block_private_networks=_flag(env, "MESHGATE_BLOCK_PRIVATE_NETWORKS"),
        github_url=env.get("MESHGATE_SSO_GITHUB_URL", "https://github.com").rstrip("/"),
        github_api_url=env.get("MESHGATE_SSO_GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        rate_limit_key=_rate(env, "MESHGATE_RATE_LIMIT_KEY"),
        rate_limit_organization=_rate(env, "MESHGATE_RATE_LIMIT_ORG"),
        login_rate_address=_rate(env, "MESHGATE_LOGIN_RATE_ADDRESS") or DEFAULT_LOGIN_RATE_ADDRESS,
        login_rate_account=_rate(env, "MESHGATE_LOGIN_RATE_ACCOUNT") or DEFAULT_LOGIN_RATE_ACCOUNT,
        mail_rate_address=_rate(env, "MESHGATE_MAIL_RATE_ADDRESS") or DEFAULT_MAIL_RATE_ADDRESS,
        mail_rate_client=_rate(env, "MESHGATE_MAIL_RATE_CLIENT") or DEFAULT_MAIL_RATE_CLIENT,
        oauth_document_rate=_rate(env, "MESHGATE_OAUTH_CIMD_RATE") or DEFAULT_OAUTH_DOCUMENT_RATE,
        oauth_register_rate=_rate(env, "MESHGATE_OAUTH_REGISTER_RATE") or DEFAULT_OAUTH_REGISTER_RATE,
        oauth_register_per_day=_count(env, "MESHGATE_OAUTH_REGISTER_PER_DAY", 200, 1, 1_000_000),
        replica_heartbeat_seconds=_float(env, "MESHGATE_REPLICA_HEARTBEAT_SECONDS", 5.0),
        log_format=_choice(env, "MESHGATE_LOG_FORMAT", ("auto", "json", "text")),
        tracing_enabled=not _flag(env, "OTEL_SDK_DISABLED"),
        otel_sampler=env.get("OTEL_TRACES_SAMPLER", "parentbased_traceidratio").strip().lower(),
        otel_sampler_arg=_float(env, "OTEL_TRACES_SAMPLER_ARG", 0.1),
        otlp_traces_endpoint=_otlp_endpoint(env),
        otlp_headers=_otlp_headers(env),
        otel_service_name=env.get("OTEL_SERVICE_NAME", "meshgate"),
        metrics_enabled=env.get("MESHGATE_METRICS", "on").strip().lower() not in ("0", "off", "false", "no"),
        metrics_token=env.get("MESHGATE_METRICS_TOKEN") or None,
        metrics_open=_flag(env, "MESHGATE_METRICS_OPEN"),
        oauth_access_token_seconds=_bounded(env, "MESHGATE_OAUTH_ACCESS_TOKEN_SECONDS", 900, 1, 24 * 3600),
        oauth_refresh_token_seconds=_bounded(
            env, "MESHGATE_OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600, 60, 365 * 24 * 3600
        ),
        session_seconds=_bounded(env, "MESHGATE_SESSION_SECONDS", 12 * 3600, 60, 30 * 24 * 3600),
        stdio_max_processes=_bounded(env, "MESHGATE_STDIO_MAX_PROCESSES", 20, 1, 10_000),
        stdio_idle_seconds=_float(env, "MESHGATE_STDIO_IDLE_SECONDS", 600.0),
        upstream_sessions_max=_bounded(env, "MESHGATE_UPSTREAM_SESSIONS_MAX", 100, 1, 100_000),
        upstream_session_idle_seconds=_float(env, "MESHGATE_UPSTREAM_SESSION_IDLE_SECONDS", 300.0),
        virtual_list_ttl_seconds=_float(env, "MESHGATE_VIRTUAL_LIST_TTL_SECONDS", 300.0),
        virtual_list_timeout_seconds=_float(env, "MESHGATE_VIRTUAL_LIST_TIMEOUT_SECONDS", 5.0),
        ai_timeout_seconds=_float(env, "MESHGATE_AI_TIMEOUT_SECONDS", 120.0),
        ai_models_ttl_seconds=_float(env, "MESHGATE_AI_MODELS_TTL_SECONDS", 300.0),
        ai_rate_limit_key=_rate(env, "MESHGATE_AI_RATE_LIMIT_KEY"),
        ai_rate_limit_organization=_rate(env, "MESHGATE_AI_RATE_LIMIT_ORG"),
        ai_token_budget_key=_rate(env, "MESHGATE_AI_TOKEN_BUDGET_KEY", budget=True),
        ai_token_budget_organization=_rate(env, "MESHGATE_AI_TOKEN_BUDGET_ORG", budget=True),
        event_delivery=env.get("MESHGATE_EVENT_DELIVERY", "on").strip().lower() not in ("0", "off", "false", "no"),
        event_batch_size=_bounded(env, "MESHGATE_EVENT_BATCH_SIZE", 50, 1, 1000),
        event_retry_first_seconds=_float(env, "MESHGATE_EVENT_RETRY_FIRST_SECONDS", 1.0),
        event_retry_max_seconds=_float(env, "MESHGATE_EVENT_RETRY_MAX_SECONDS", 3600.0),
        event_max_attempts=_bounded(env, "MESHGATE_EVENT_MAX_ATTEMPTS", 20, 1, 1000),
        event_lease_seconds=_float(env, "MESHGATE_EVENT_LEASE_SECONDS", 60.0),
        event_poll_seconds=_float(env, "MESHGATE_EVENT_POLL_SECONDS", 30.0),
        connection_token_seconds=_bounded(env, "MESHGATE_CONNECTION_TOKEN_SECONDS", 900, 60, 24 * 3600),
        storage_max_object_bytes=_count(env, "MESHGATE_STORAGE_MAX_OBJECT_BYTES", 100 << 20, 1, 5 << 30),
        sandbox=SandboxLimits(
            memory_bytes=_bounded(env, "MESHGATE_SANDBOX_MEMORY_BYTES", 64 << 20, 1 << 20, 4 << 30),
            cpu_seconds=_positive(env, "MESHGATE_SANDBOX_CPU_SECONDS", 5.0),
            wall_seconds=_positive(env, "MESHGATE_SANDBOX_WALL_SECONDS", 30.0),
            output_bytes=_bounded(env, "MESHGATE_SANDBOX_OUTPUT_BYTES", 1 << 20, 1024, 64 << 20),
            tool_calls=_bounded(env, "MESHGATE_SANDBOX_TOOL_CALLS", 200, 0, 100_000),
            concurrent=_bounded(env, "MESHGATE_SANDBOX_CONCURRENT", 4, 1, 256),
        ),
        auth_config=load_auth_config(env.get("MESHGATE_AUTH_CONFIG"), env),
        previous_encryption_keys=tuple(
            _decode_key(value, "ENCRYPTION_KEYS_PREVIOUS") for value in _csv(env, "ENCRYPTION_KEYS_PREVIOUS")
        ),
    )


def with_overrides(settings: Settings, *, host: str | None, port: int | None, local_mode: bool) -> Settings:
    """Apply command-line overrides; the public URL follows unless it was set explicitly."""
    new_host = host or settings.host
    new_port = port or settings.port
    public_url = settings.public_url
    if public_url == f"http://{settings.host}:{settings.port}":
        public_url = f"http://{new_host}:{new_port}"
    return replace(
        settings, host=new_host, port=new_port, public_url=public_url, local_mode=settings.local_mode or local_mode
    )


def make_private_dir(path: Path) -> None:
    """Create `path` readable by this user only (0700): it holds the database, its keys and audit payloads.

    A directory that exists already is left as the operator made it."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:  # another process made it first
        return
    path.chmod(0o700)  # an unusual umask could have left the owner without write access


def _encryption_key(env: Mapping[str, str], data_dir: Path) -> bytes:
    given = env.get("ENCRYPTION_KEY")
    if given:
        return _decode_key(given, "ENCRYPTION_KEY")
    raw = _read_or_generate(data_dir / _KEY_FILE, "ENCRYPTION_KEY")
    return _decode_key(raw, str(data_dir / _KEY_FILE))


def _secret(env: Mapping[str, str], data_dir: Path) -> bytes:
    given = env.get("MESHGATE_SECRET")
    if given:
        if len(given) < 32:
            raise ConfigurationError("MESHGATE_SECRET must be at least 32 characters long")
        return given.encode()
    return _read_or_generate(data_dir / _SECRET_FILE, "MESHGATE_SECRET").encode()


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{where} is not valid base64; expected base64 of 32 random bytes") from exc
    if len(key) != 32:
        raise ConfigurationError(f"{where} decodes to {len(key)} bytes; expected exactly 32 (AES-256)")
    return key


def _read_or_generate(path: Path, variable: str) -> str:
    if path.exists():
        return path.read_text().strip()
    make_private_dir(path.parent)
    value = base64.b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log.warning("%s is not set: generated one into %s (mode 0600); back it up or set %s", variable, path, variable)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _rate(env: Mapping[str, str], name: str, *, budget: bool = False) -> Rate | None:
    value = env.get(name, "").strip()
    if not value or value.lower() == "off":
        return None
    return Rate.parse_budget(value, name) if budget else Rate.parse(value, name)


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, allowed[0]).strip().lower()
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds above zero (a limit of 0 would mean none)."""
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigurationError(f"{name}={value!r} must be above 0 (seconds)")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={value!r} is not a number") from exc


def _otlp_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL from the standard variables (nothing is exported without one)."""
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None


def _otlp_headers(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={value!r} is not an integer") from exc


def _count(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default)
    if not low <= value <= high:
        raise ConfigurationError(f"{name} is {value}; it must be between {low} and {high}")
    return value


def _bounded(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default)
    if not low <= value <= high:
        raise ConfigurationError(f"{name} is {value}; it must be between {low} and {high} seconds")
    return value
