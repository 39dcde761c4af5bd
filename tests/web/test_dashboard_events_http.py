"""The event pages over plain HTTP (no browser): who may open the live stream, and the forms' CSRF and refusals."""

from __future__ import annotations

import pytest

from support.browser import add_member
from support.dashboard_events import bus_with_subscriber, publish
from support.gateway import Gateway, Upstream
from support.oauth import forms_of, logged_in

pytestmark = pytest.mark.anyio


async def test_the_live_stream_and_the_event_forms_refuse_who_may_not_use_them(
    web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus = await bus_with_subscriber(web_gateway, subscriber, "Guarded Orders")
    published = await publish(web_gateway, bus, "order.created", {})
    member = await add_member(web_gateway, bus.person.organization_id)  # the built-in member: no EVENT_LIST
    root = f"/app/{bus.slug}/events"
    async with logged_in(web_gateway, member.email, member.password) as http:
        assert (await http.get(root)).status_code == 403
        refused = await http.get(f"{root}/live")
        assert refused.status_code == 403 and "self:EVENT_LIST" in refused.text
    async with logged_in(web_gateway, bus.person.email, bus.person.password) as http:
        typo = await http.get(root, params={"type": "order created", "delivery": "dead"})
        assert typo.status_code == 400 and "is not an event type" in typo.text  # next to the filters
        page = await http.get(f"{root}/{published['id']}")
        assert page.status_code == 200
        forged = await http.post(f"{root}/{published['id']}/redeliver", data={"csrf_token": "not-the-token"})
        assert forged.status_code == 403 and "Form expired" in forged.text
        token = forms_of(page.text).fields["csrf_token"]
        cancelled = await http.post(f"{root}/{published['id']}/cancel", data={"csrf_token": token})
        assert cancelled.status_code == 409 and "only scheduled and recurring events" in cancelled.text
