"""The sign-in configuration file (`MESHGATE_AUTH_CONFIG`, JSON or TOML), checked once at start.

The keys are those of the reference system's `auth-config.json`, accepted as they are:

    emailAndPassword      {enabled}                                   password login (default on)
    socialProviders       {google|github: {clientId, clientSecret}}   parsed, not used yet
    saml / ssoConfig      {enabled, providers: [...]} / {...}         parsed, not used yet
    emailProviders        [{id, provider: resend|sendgrid|smtp, config}]
    inviteEmailProviderId, resetPasswordEmailProviderId, verificationEmailProviderId
    magicLinkConfig       {enabled, emailProviderId}                  sign-in links by email

Any string that is a secret may be written `env:NAME`: it is read from the environment at start and a
missing variable stops start-up. Every error names the key (`emailProviders[1].config.apiKey`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshgate.email_address import clean_email
from meshgate.errors import ConfigurationError

PROVIDER_KINDS = ("resend", "sendgrid", "smtp")
SMTP_SECURITY = ("starttls", "tls", "none")
PURPOSES = ("invite", "resetPassword", "verification", "magicLink")
_TOP_KEYS = frozenset(
    {
        "emailAndPassword",
        "socialProviders",
        "saml",
        "ssoConfig",
        "emailProviders",
        "inviteEmailProviderId",
        "resetPasswordEmailProviderId",
        "verificationEmailProviderId",
        "magicLinkConfig",
        "emailOtpConfig",
    }
)
_SOCIAL = ("google", "github")


@dataclass(frozen=True, slots=True)
class EmailProviderConfig:
    """One way out for mail: an HTTP API (`resend`, `sendgrid`) or an SMTP server."""

    id: str
    kind: str
    from_email: str
    from_name: str | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None  # overrides the API's documented address (tests, regional endpoints)
    host: str | None = None
    port: int | None = None
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The checked file; without a file, `AuthConfig()` is password login as before and no mail."""

    password_login: bool = True
    email_providers: tuple[EmailProviderConfig, ...] = ()
    purposes: Mapping[str, str] = field(default_factory=dict[str, str])  # purpose -> provider id
    magic_link: bool = False
    social_providers: tuple[str, ...] = ()
    saml_enabled: bool = False

    def provider_for(self, purpose: str) -> EmailProviderConfig | None:
        """The provider mail for `purpose` goes out through: the one named for it, else the first."""
        wanted = self.purposes.get(purpose)
        for provider in self.email_providers:
            if wanted is None or provider.id == wanted:
                return provider
        return None


def load_auth_config(path: str | None, env: Mapping[str, str]) -> AuthConfig:
    """Read and check the file at `path` (`.toml` is TOML, anything else JSON); None: the defaults."""
    if not path:
        return AuthConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"MESHGATE_AUTH_CONFIG: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data: Any = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if file.suffix.lower() == ".toml" else "JSON"
        raise ConfigurationError(f"MESHGATE_AUTH_CONFIG: {path} is not valid {kind}: {exc}") from exc
    return parse_auth_config(data, env)


def parse_auth_config(data: Any, env: Mapping[str, str]) -> AuthConfig:
    """Check the parsed document; a `ConfigurationError` names the first key that is wrong."""
    top = _object(data, "the auth configuration")
    unknown = sorted(set(top) - _TOP_KEYS)
    if unknown:
        raise ConfigurationError(
            f"auth configuration: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(_TOP_KEYS))}"
        )
    reader = _Reader(env)
    email_password = _object(top.get("emailAndPassword", {}), "emailAndPassword")
    providers = reader.providers(top.get("emailProviders", []))
    ids = {provider.id for provider in providers}
    purposes: dict[str, str] = {}
    for purpose, key in (
        ("invite", "inviteEmailProviderId"),
        ("resetPassword", "resetPasswordEmailProviderId"),
        ("verification", "verificationEmailProviderId"),
    ):
        if key in top:
            purposes[purpose] = _known_id(top[key], key, ids)
    magic = _object(top.get("magicLinkConfig", {}), "magicLinkConfig")
    magic_enabled = _bool(magic.get("enabled", False), "magicLinkConfig.enabled")
    if "emailProviderId" in magic:
        purposes["magicLink"] = _known_id(magic["emailProviderId"], "magicLinkConfig.emailProviderId", ids)
    if magic_enabled and not providers:
        raise ConfigurationError("magicLinkConfig.enabled is true but emailProviders is empty: links need a mailer")
    social = reader.social(top.get("socialProviders", {}))
    saml = _object(top.get("saml", {}), "saml")
    saml_enabled = _bool(saml.get("enabled", False), "saml.enabled")
    if "providers" in saml and not isinstance(saml["providers"], list):
        raise ConfigurationError("saml.providers must be a list")
    _object(top.get("ssoConfig", {}), "ssoConfig")
    _object(top.get("emailOtpConfig", {}), "emailOtpConfig")
    return AuthConfig(
        password_login=_bool(email_password.get("enabled", True), "emailAndPassword.enabled"),
        email_providers=providers,
        purposes=purposes,
        magic_link=magic_enabled,
        social_providers=social,
        saml_enabled=saml_enabled,
    )


class _Reader:
    """Reads values that may be `env:NAME` references to the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def secret(self, value: Any, where: str) -> str:
        text = _string(value, where)
        if text.startswith("env:"):
            name = text[4:]
            resolved = self._env.get(name)
            if not name or not resolved:
                raise ConfigurationError(f"{where} refers to the environment variable {name!r}, which is not set")
            return resolved
        return text

    def providers(self, value: Any) -> tuple[EmailProviderConfig, ...]:
        if not isinstance(value, list):
            raise ConfigurationError("emailProviders must be a list of {id, provider, config}")
        found: list[EmailProviderConfig] = []
        for index, item in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            provider = self.provider(item, f"emailProviders[{index}]")
            if any(other.id == provider.id for other in found):
                raise ConfigurationError(f"emailProviders[{index}].id {provider.id!r} is used twice")
            found.append(provider)
        return tuple(found)

    def provider(self, value: Any, where: str) -> EmailProviderConfig:
        item = _object(value, where)
        provider_id = _string(item.get("id"), f"{where}.id")
        kind = _string(item.get("provider"), f"{where}.provider")
        if kind not in PROVIDER_KINDS:
            raise ConfigurationError(f"{where}.provider is {kind!r}; use one of {', '.join(PROVIDER_KINDS)}")
        config = _object(item.get("config"), f"{where}.config")
        at = f"{where}.config"
        from_email = _string(config.get("fromEmail"), f"{at}.fromEmail")
        try:
            clean_email(from_email)
        except Exception as exc:
            raise ConfigurationError(f"{at}.fromEmail {from_email!r} is not an email address") from exc
        from_name = _string(config["fromName"], f"{at}.fromName") if "fromName" in config else None
        base_url = _url(config["baseUrl"], f"{at}.baseUrl") if "baseUrl" in config else None
        timeout = _number(config.get("timeoutSeconds", 10.0), f"{at}.timeoutSeconds", 0.1, 300.0)
        if kind != "smtp":
            return EmailProviderConfig(
                provider_id,
                kind,
                from_email,
                from_name,
                api_key=self.secret(config.get("apiKey"), f"{at}.apiKey"),
                base_url=base_url,
                timeout_seconds=timeout,
            )
        security = _string(
            config.get("security", "tls" if config.get("secure") is True else "starttls"), f"{at}.security"
        )
        if security not in SMTP_SECURITY:
            raise ConfigurationError(f"{at}.security is {security!r}; use one of {', '.join(SMTP_SECURITY)}")
        default_port = {"tls": 465, "starttls": 587, "none": 25}[security]
        port = int(_number(config.get("port", default_port), f"{at}.port", 1, 65535))
        auth = _object(config.get("auth", {}), f"{at}.auth")
        username = config.get("username", auth.get("user"))
        password = config.get("password", auth.get("pass"))
        if (username is None) != (password is None):
            raise ConfigurationError(f"{at}: give both username and password, or neither")
        return EmailProviderConfig(
            provider_id,
            kind,
            from_email,
            from_name,
            host=_string(config.get("host"), f"{at}.host"),
            port=port,
            security=security,
            username=None if username is None else _string(username, f"{at}.username"),
            password=None if password is None else self.secret(password, f"{at}.password"),
            timeout_seconds=timeout,
        )

    def social(self, value: Any) -> tuple[str, ...]:
        providers = _object(value, "socialProviders")
        for name, entry in providers.items():
            if name not in _SOCIAL:
                raise ConfigurationError(f"socialProviders.{name} is not supported; use {' or '.join(_SOCIAL)}")
            item = _object(entry, f"socialProviders.{name}")
            _string(item.get("clientId"), f"socialProviders.{name}.clientId")
            self.secret(item.get("clientSecret"), f"socialProviders.{name}.clientSecret")
        return tuple(sorted(providers))


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be an object")
    items: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
    return {str(key): item for key, item in items.items()}


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where} is required and must be a non-empty string")
    return value.strip()


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where} must be true or false")
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"{where} must be a number from {low:g} to {high:g}")
    return float(value)


def _url(value: Any, where: str) -> str:
    text = _string(value, where)
    if not text.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where} must be an http:// or https:// URL")
    return text.rstrip("/")


def _known_id(value: Any, where: str, ids: set[str]) -> str:
    provider_id = _string(value, where)
    if provider_id not in ids:
        known = ", ".join(sorted(ids)) or "none are configured"
        raise ConfigurationError(f"{where} is {provider_id!r}, which is not an emailProviders id ({known})")
    return provider_id
