"""Redaction rules as pure functions."""

from __future__ import annotations

from meshgate.monitoring.redaction import cut, payload, redact, redact_text


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
