"""The rules every object key passes before it reaches a store: confined, bounded, printable."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshgate.errors import InvalidInput
from meshgate.storage.models import checked_content_type, checked_expires_in, checked_key, checked_limit, checked_prefix


@given(st.text(min_size=1, max_size=80))
def test_an_accepted_key_never_leaves_the_organizations_prefix(key: str) -> None:
    try:
        checked_key(key)
    except InvalidInput:
        return
    inside = PurePosixPath("/store/org-a") / key
    assert ".." not in inside.parts and str(inside).startswith("/store/org-a/")
    assert "\\" not in key and not any(unicodedata.category(ch) == "Cc" for ch in key)


@pytest.mark.parametrize(
    "key", ["..", "../x", "a/..", "/a", "a\\b", "a\x00", "a\x7f", "a\x1b[0m", "a//b", "a/", "é" * 481]
)
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput, match="is refused: it"):
        checked_key(key)


def test_good_keys_and_prefixes_pass() -> None:
    assert checked_key("reports/2026/q4 final (1).pdf") == "reports/2026/q4 final (1).pdf"
    assert checked_key("é" * 480) == "é" * 480  # 960 bytes of UTF-8
    assert checked_prefix("reports/") == "reports/"
    assert checked_prefix(None) == ""
    with pytest.raises(InvalidInput):
        checked_prefix("reports/../")


def test_bounds_on_limit_expiry_and_content_type() -> None:
    assert checked_limit(None) == 100 and checked_expires_in(None) == 300
    for bad in (0, 1001):
        with pytest.raises(InvalidInput, match="between 1 and 1000"):
            checked_limit(bad)
    for bad in (0, 3601):
        with pytest.raises(InvalidInput, match="between 1 and 3600 seconds"):
            checked_expires_in(bad)
    assert checked_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    for bad in ("text", "text/plain\r\nX-Evil: 1", "a/" + "b" * 200):
        with pytest.raises(InvalidInput, match="media type"):
            checked_content_type(bad)
