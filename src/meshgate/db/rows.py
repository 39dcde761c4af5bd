"""What every new row carries: a fresh id and an aware UTC timestamp (naive datetimes are refused on write)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """A new primary key: a random UUID as text."""
    return str(uuid.uuid4())


def utc_now() -> datetime:
    """The current time in UTC, for `created_at` / `updated_at` / expiry columns."""
    return datetime.now(UTC)
