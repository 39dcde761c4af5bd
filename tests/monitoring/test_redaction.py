"""Redaction rules as pure functions."""

from __future__ import annotations

import orjson
import pytest

from meshgate.monitoring import redaction
from meshgate.monitoring.redaction import (
    STRING_PREVIEW,
    cut,
    payload,
    random_looking,
    redact,
    redact_text,
    secret_name,
)


def test_secret_named_fields_are_replaced_at_any_depth() -> None:
    value = {"user": {"Password": "p", "apiKey": "k", "list": [{"client_secret": "s"}]}, "name": "ok"}
    assert redact(value) == {
        "user": {"Password": "[REDACTED]", "apiKey": "[REDACTED]", "list": [{"client_secret": "[REDACTED]"}]},
        "name": "ok",
    }


def test_secret_shaped_strings_are_masked() -> None:
    text = (
        "to bob@example.com, key mg_AAAAAAAAAAAAAAAAAAAAAAAAAAAA, Bearer abc.def.ghi-jkl, "
        "card 4242-4242-4242-4242, order 1234567890123 stays, aws AKIAABCDEFGHIJKLMNOP"
    )
    out = redact_text(text)
    assert "bob@example.com" not in out and "[EMAIL]" in out
    assert "mg_AAAA" not in out and "abc.def.ghi-jkl" not in out
    assert "[CARD]" in out and "4242-4242" not in out
    assert "1234567890123" in out  # fails the Luhn check: not a card number
    assert "AKIAABCDEFGHIJKLMNOP" not in out


def test_payloads_are_cut_at_64_kib_on_a_character_boundary() -> None:
    text = "é" * 40_000  # 80,000 bytes
    out = cut(text)
    assert len(out.encode()) <= 64 * 1024 and out.endswith("…[truncated]")
    assert payload(None) is None
    assert payload({"a": 1}) == '{"a":1}'


# -- security review finding 16: the secret shapes the first rules missed ------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3F7pX\n"
    "q2Nk0vD+8xR/1ZyTcsW4bLgE\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.finding(16)
@pytest.mark.parametrize(
    "name",
    [
        "pwd",
        "pin",
        "userPin",
        "pin_code",
        "otp",
        "totp",
        "key",
        "key_id",
        "signing_key",
        "hmacKey",
        "private",
        "privateKey",
        "private_notes",
        "credential",
        "credentials",
        "dsn",
        "database_dsn",
        "connection_string",
        "connectionString",
        "connstring",
        "connString",
        "x-api-key",
        "Authorization_header",
    ],
)
def test_secret_key_names_are_masked(name: str) -> None:
    assert secret_name(name)
    assert redact({name: "a-value-of-any-shape"}) == {name: "[REDACTED]"}


@pytest.mark.finding(16)
@pytest.mark.parametrize(
    "name",
    [
        "monkey",
        "keyboard_layout",
        "keys",
        "hotkey",
        "public_key",
        "publicKey",
        "is_private",
        "spin",
        "mapping",
        "pinned",
        "shipping_address",
        "description",
        "name",
        "cwd",
    ],
)
def test_ordinary_key_names_stay(name: str) -> None:
    assert not secret_name(name)
    assert redact({name: "kept"}) == {name: "kept"}


@pytest.mark.finding(16)
@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"here: {PEM} and after", "MIIEpAIBAAKCAQEA", "and after"),
        (PEM.replace("-----END RSA PRIVATE KEY-----", "") + " ", "q2Nk0vD", "[PRIVATE_KEY]"),  # cut before END
        ("postgresql://app:s3cr3t-pw@db.internal:5432/prod", "s3cr3t-pw", "postgresql://app:"),
        ("redis://:hunter2hunter2@127.0.0.1:6379/0", "hunter2hunter2", "@127.0.0.1:6379/0"),
        (f"AKIAIOSFODNN7EXAMPLE {AWS_SECRET}", AWS_SECRET, ""),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws_secret_access_key"),
        ("session x9Kq2LmZ8vR4tY7wB1nC5dF3gH6jP0sQ ok", "x9Kq2LmZ8vR4tY7wB1nC5dF3gH6jP0sQ", "session"),
        ("my password is hunter2, thanks", "hunter2", "thanks"),
        ("password=hunter2&next=1", "hunter2", "next=1"),
        ("password: hunter2", "hunter2", "password:"),
        ("the pin was 4711.", "4711", "the pin was"),
        ("otp=987654", "987654", "otp="),
        ("key=Zm9vYmFyYmF6", "Zm9vYmFyYmF6", "key="),
        ('{"dbPassword": "hunter2"}', "hunter2", "dbPassword"),
    ],
)
def test_secret_shapes_in_free_text_are_masked(text: str, secret: str, kept: str) -> None:
    out = redact_text(text)
    assert secret not in out, out
    assert kept in out, out


@pytest.mark.finding(16)
@pytest.mark.parametrize(
    "header",
    [
        "authorization: Bearer upstream-secret-token-1",
        "Authorization: Token tok_abc",
        "Authorization: Basic dXNlcjpwYXNz",
        "Proxy-Authorization: Digest username=x",
        "authorization=abc123 and more",
        "{'authorization': 'Bearer upstream-secret-token-1', 'accept': '*/*'}",
        '"Authorization": "ApiKey k-1"',
    ],
)
def test_the_whole_authorization_credential_is_masked(header: str) -> None:
    out = redact_text(header)
    for part in ("upstream-secret-token-1", "tok_abc", "dXNlcjpwYXNz", "username=x", "abc123", "k-1"):
        assert part not in out, out
    assert "[REDACTED]" in out


@pytest.mark.finding(16)
@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog.",
        "commit 3f2a9c1e3f2a9c1e3f2a9c1e3f2a9c1e3f2a9c1e",  # hex digests and ids stay readable
        "id 123e4567-e89b-12d3-a456-426614174000",
        "getUserById_2024_v2_ExtraLongNameForTesting",
        "MonitoringLogsListV2ResponseItem2026",
        "/usr/local/lib/python3.11/site-packages/meshgate/monitoring/redaction.py",
        "monkey=3 keyboard_layout=us max_tokens=5 spinning: yes mapping=a",
        "https://example.com/a/b?q=1 and http://user@host/x",
        "the keyboard is here; a monkey is there",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.finding(16)
def test_a_random_run_that_is_not_a_secret_still_has_its_inner_shapes_masked() -> None:
    text = "ref-sk-live-abcdefghijklmnop1234"  # one long run; not random, but it ends in an API key
    assert redact_text(text) == "ref-[API_KEY]"


@pytest.mark.finding(16)
def test_random_looking_needs_mixed_classes_high_entropy_and_few_words() -> None:
    assert random_looking("x9Kq2LmZ8vR4tY7wB1nC5dF3gH6jP0sQ")
    assert not random_looking("a" * 40)
    assert not random_looking("3f2a9c1e3f2a9c1e3f2a9c1e3f2a9c1e")
    assert not random_looking("getUserById_2024_v2_ExtraLongNameForTesting")


def test_a_long_string_keeps_its_redacted_preview_only() -> None:
    secret = "ghp_" + "A1b2C3d4" * 5
    stored = payload({"content": [{"type": "text", "text": f"token {secret} " + "x" * (1024 * 1024)}]})
    assert stored is not None and secret not in stored and "[TOKEN]" in stored
    text = orjson.loads(stored)["content"][0]["text"]
    preview = f"token {secret} ".replace(secret, "[TOKEN]") + "x" * (STRING_PREVIEW - len(f"token {secret} "))
    assert text == preview + "…[truncated]"


def test_text_past_what_is_stored_is_not_redacted_at_all() -> None:
    """Once 64 KiB of text is kept, later strings are dropped (the stored payload is cut there anyway)."""
    many = [f"{n} " + "y" * (STRING_PREVIEW - 8) for n in range(20)]
    kept = redact(many)
    assert kept[:8] == many[:8]
    assert all(item == "…[truncated]" for item in kept[9:])


def test_only_the_rules_a_string_could_match_are_run() -> None:
    """Each rule is skipped where its hint is missing; the answers are the same as with every rule."""
    samples = [
        "plain words and 12 numbers",
        "mail bob@example.com, card 4111 1111 1111 1111",
        "Authorization: Bearer abcdefgh12345678 and postgres://u:hunter2@db/x",
        "pa\u017f\u017fword=hunter2",  # long s: the ignore-case rules match it, so its hint must be found too
        "AKIAABCDEFGHIJKLMNOP wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ]
    for sample in samples:
        every_rule = redaction._shapes(tuple(redaction._BY_NAME))
        assert redact_text(sample) == every_rule.sub(redaction._replace, sample)
