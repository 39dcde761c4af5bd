"""Browser tests run against one gateway on SQLite: the dashboard's logic does not depend on the backend,
and a browser suite per backend would add minutes to a run that already takes many."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.databases import fresh_database
from support.gateway import Gateway, start_gateway


@pytest.fixture(scope="session")
def web_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gw-web")
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp)
        try:
            yield gateway
        finally:
            code = gateway.stop()
            assert code == 0, f"gateway exited with {code}:\n{gateway.logs()}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
