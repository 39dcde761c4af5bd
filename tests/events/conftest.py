"""The subscriber every event bus test delivers to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.events import start_subscriber
from support.gateway import Upstream


@pytest.fixture
def subscriber() -> Iterator[Upstream]:
    yield from start_subscriber()
