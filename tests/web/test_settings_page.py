"""The settings page over plain HTTP."""

from __future__ import annotations

import re

import pytest

from support.gateway import Gateway
from support.oauth import logged_in, new_person

pytestmark = pytest.mark.anyio


@pytest.mark.finding(23)
async def test_settings_page_title_is_only_its_name(web_gateway: Gateway) -> None:
    person = await new_person(web_gateway, "Title Org")
    async with logged_in(web_gateway, person.email, person.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        page = await http.get(f"{root}/settings")
    assert page.status_code == 200
    titles = re.findall(r"<title>(.*?)</title>", page.text, flags=re.DOTALL)
    assert titles == ["Settings · Title Org · meshgate"]
    assert page.text.count("Create another organization") == 1  # the form is in the page, once
