"""MESHGATE_AUTH_CONFIG: the reference system's auth-config.json is accepted as it is, in JSON or TOML,
secrets may come from the environment, and every mistake stops start-up naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshgate.auth_config import load_auth_config, parse_auth_config
from meshgate.errors import ConfigurationError
from meshgate.settings import load_settings

REFERENCE = {
    "emailAndPassword": {"enabled": True},
    "socialProviders": {
        "google": {"clientId": "id.apps.googleusercontent.com", "clientSecret": "env:GOOGLE_SECRET"},
        "github": {"clientId": "gh-id", "clientSecret": "gh-secret"},
    },
    "saml": {"enabled": False, "providers": []},
    "emailProviders": [
        {
            "id": "resend-primary",
            "provider": "resend",
            "config": {"apiKey": "env:RESEND_KEY", "fromEmail": "noreply@example.com"},
        }
    ],
    "inviteEmailProviderId": "resend-primary",
    "magicLinkConfig": {"enabled": True, "emailProviderId": "resend-primary"},
}
ENV = {"GOOGLE_SECRET": "g-secret", "RESEND_KEY": "re_live_key"}


def test_the_reference_file_is_accepted_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "auth-config.json"
    path.write_text(json.dumps(REFERENCE))
    config = load_auth_config(str(path), ENV)
    assert config.password_login
    assert config.magic_link
    assert config.social_providers == ("github", "google")
    (provider,) = config.email_providers
    assert (provider.id, provider.kind, provider.api_key) == ("resend-primary", "resend", "re_live_key")
    assert "re_live_key" not in repr(provider)
    assert config.provider_for("invite") is provider


def test_toml_works_the_same(tmp_path: Path) -> None:
    path = tmp_path / "auth.toml"
    path.write_text(
        """
inviteEmailProviderId = "mail"
[emailAndPassword]
enabled = true
[[emailProviders]]
id = "mail"
provider = "smtp"
[emailProviders.config]
host = "smtp.example.com"
security = "tls"
username = "meshgate"
password = "env:SMTP_PASSWORD"
fromEmail = "noreply@example.com"
"""
    )
    (provider,) = load_auth_config(str(path), {"SMTP_PASSWORD": "pw"}).email_providers
    assert (provider.kind, provider.host, provider.port, provider.security, provider.password) == (
        "smtp",
        "smtp.example.com",
        465,
        "tls",
        "pw",
    )


def test_without_a_file_password_login_works_and_no_mail_is_configured() -> None:
    config = load_auth_config(None, {})
    assert config.password_login
    assert config.email_providers == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"emailProviders": [{"id": "x", "provider": "mailgun", "config": {}}]}, "emailProviders[0].provider"),
        (
            {"emailProviders": [{"id": "x", "provider": "resend", "config": {"fromEmail": "a@example.com"}}]},
            "emailProviders[0].config.apiKey",
        ),
        (
            {"emailProviders": [{"id": "x", "provider": "resend", "config": {"apiKey": "k", "fromEmail": "nope"}}]},
            "emailProviders[0].config.fromEmail",
        ),
        ({"inviteEmailProviderId": "missing"}, "inviteEmailProviderId"),
        ({"magicLinkConfig": {"enabled": "yes"}}, "magicLinkConfig.enabled"),
        ({"socialProviders": {"myspace": {}}}, "socialProviders.myspace"),
        ({"socialProviders": {"github": {"clientId": "id"}}}, "socialProviders.github.clientSecret"),
        ({"emailAndPasword": {"enabled": True}}, "'emailAndPasword'"),
    ],
)
def test_a_wrong_key_is_named(change: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_auth_config({**REFERENCE, **change}, ENV)
    assert named in caught.value.message


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_auth_config(REFERENCE, {"GOOGLE_SECRET": "g"})
    assert caught.value.message == (
        "emailProviders[0].config.apiKey refers to the environment variable 'RESEND_KEY', which is not set"
    )


def test_settings_stop_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "auth-config.json"
    path.write_text("{not json")
    env = {"MESHGATE_DATA_DIR": str(tmp_path / "data"), "MESHGATE_AUTH_CONFIG": str(path)}
    with pytest.raises(ConfigurationError, match="is not valid JSON"):
        load_settings(env)
