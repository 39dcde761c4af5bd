"""The event bus in a real browser: events published over the API are listed and opened with their deliveries;
a dead delivery is redelivered and a scheduled event cancelled from the page; data is shown escaped; a person
whose role only reads sees no buttons; the live view prepends events from the watch stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from playwright.sync_api import Browser, Page, expect

from conftest import add_connection
from support.browser import add_member, log_in, run_async, shot
from support.gateway import Gateway, Upstream, manage
from support.oauth import Person, new_person

HOSTILE = "<script>document.title='owned'</script>"


@dataclass(frozen=True)
class Bus:
    person: Person
    slug: str
    connection_id: str


async def _bus(gateway: Gateway, subscriber: Upstream, org: str) -> Bus:
    """An organization whose "Orders app" connection (the ON_EVENTS test server) subscribes to `order.*`."""
    person = await new_person(gateway, org)
    connection = await add_connection(gateway, person.api_key, subscriber, title="Orders app")
    manage(gateway, person.api_key, "EVENT_SUBSCRIBE", eventType="order.*", connectionId=connection["id"])
    slug = manage(gateway, person.api_key, "ORGANIZATION_GET")["slug"]
    return Bus(person, str(slug), str(connection["id"]))


async def _upstream(gateway: Gateway, bus: Bus, tool: str, arguments: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{gateway.url}/mcp/{bus.connection_id}/call-tool/{tool}",
            json=arguments,
            headers={"authorization": f"Bearer {bus.person.api_key}"},
        )
    assert answer.status_code == 200, answer.text


async def _publish(gateway: Gateway, bus: Bus, event_type: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{gateway.url}/api/{bus.slug}/events/{event_type}",
            json=body,
            headers={"authorization": f"Bearer {bus.person.api_key}"},
        )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def _delivery_becomes(gateway: Gateway, key: str, event_id: str, status: str) -> dict[str, Any]:
    """The gateway's own worker delivers in the background: poll the event with a deadline."""
    with anyio.fail_after(20):
        while True:
            deliveries = manage(gateway, key, "EVENT_GET", eventId=event_id)["deliveries"]
            if deliveries and deliveries[0]["status"] == status:
                return dict(deliveries[0])
            await anyio.sleep(0.05)


async def _dead_and_scheduled(gateway: Gateway, subscriber: Upstream, org: str) -> tuple[Bus, str, str]:
    """An order event whose only delivery failed for good (the next attempt will be asked to wait an hour),
    and an event scheduled for next year."""
    bus = await _bus(gateway, subscriber, org)
    answers = [{"success": False, "error": "stock service down"}, {"retryAfter": 3_600_000}]
    await _upstream(gateway, bus, "answer_with", {"answers": answers})
    failed = await _publish(
        gateway, bus, "order.created", {"subject": "order-7", "data": {"note": HOSTILE, "total": 12}}
    )
    await _delivery_becomes(gateway, bus.person.api_key, failed["id"], "dead")
    later = await _publish(gateway, bus, "order.reminder", {"deliverAt": "2099-01-01T09:00:00Z"})
    return bus, str(failed["id"]), str(later["id"])


def _events_page(browser: Browser, gateway: Gateway, email: str, password: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, gateway, email, password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    return page


def test_owner_redelivers_a_dead_delivery_and_cancels_a_scheduled_event(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus, failed_id, later_id = run_async(_dead_and_scheduled, web_gateway, subscriber, "Order Works")
    page = _events_page(browser, web_gateway, bus.person.email, bus.person.password)
    failed = page.get_by_role("row").filter(has_text="order.created")
    expect(failed).to_contain_text("order-7")
    expect(failed).to_contain_text("dead 1")
    expect(page.get_by_role("row").filter(has_text="order.reminder")).to_contain_text("scheduled")
    shot(page, "20-events")

    page.get_by_label("With a delivery").select_option("dead")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row").filter(has_text="order.")).to_have_count(1)
    failed.get_by_role("link").click()

    expect(page.get_by_role("heading", name="order.created")).to_be_visible()
    expect(page.locator("#event-data")).to_contain_text(HOSTILE)  # as text: no element was made of it
    assert page.locator("#event-data script").count() == 0 and page.title() != "owned"
    delivery = page.get_by_role("region", name="Deliveries").get_by_role("row").filter(has_text="Orders app")
    expect(delivery).to_contain_text("dead")
    expect(delivery).to_contain_text("stock service down")
    shot(page, "20b-event-detail")
    delivery.get_by_role("button", name="Redeliver to Orders app").click()
    expect(page.get_by_role("status")).to_contain_text("pending again")
    expect(delivery).to_contain_text("pending")
    assert manage(web_gateway, bus.person.api_key, "EVENT_GET", eventId=failed_id)["deliveries"][0]["status"] == (
        "pending"
    )
    expect(page.get_by_role("button", name="Redeliver to Orders app")).to_have_count(0)

    page.goto(f"{web_gateway.url}/app/{bus.slug}/events/{later_id}")
    page.get_by_role("button", name="Cancel event").click()
    expect(page.get_by_role("status")).to_contain_text("Event cancelled")
    expect(page.get_by_role("heading", name="order.reminder")).to_contain_text("cancelled")
    expect(page.get_by_role("button", name="Cancel event")).to_have_count(0)
    assert manage(web_gateway, bus.person.api_key, "EVENT_LIST", status="cancelled")["totalCount"] == 1


def test_a_member_who_may_only_read_events_sees_no_buttons(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus, failed_id, later_id = run_async(_dead_and_scheduled, web_gateway, subscriber, "Read Only Orders")
    readable = ["EVENT_LIST", "EVENT_GET", "EVENT_SUBSCRIPTION_LIST", "COLLECTION_CONNECTIONS_LIST"]
    manage(web_gateway, bus.person.api_key, "ROLE_CREATE", name="event-reader", permissions={"self": readable})
    reader = run_async(add_member, web_gateway, bus.person.organization_id, "event-reader")
    page = _events_page(browser, web_gateway, reader.email, reader.password)
    expect(page.get_by_role("row").filter(has_text="order.created")).to_contain_text("dead 1")

    page.goto(f"{web_gateway.url}/app/{bus.slug}/events/{failed_id}")
    expect(page.get_by_role("region", name="Deliveries")).to_contain_text("stock service down")
    expect(page.get_by_role("button", name="Redeliver", exact=False)).to_have_count(0)
    page.goto(f"{web_gateway.url}/app/{bus.slug}/events/{later_id}")
    expect(page.get_by_role("heading", name="order.reminder")).to_contain_text("scheduled")
    expect(page.get_by_role("button", name="Cancel event")).to_have_count(0)
    page.get_by_role("link", name="Events", exact=True).first.click()
    page.get_by_role("navigation", name="Event bus").get_by_role("link", name="Subscriptions").click()
    expect(page.get_by_role("region", name="Orders app")).to_contain_text("order.*")
    expect(page.get_by_role("button", name="Delete", exact=False)).to_have_count(0)
    expect(page.get_by_role("button", name="Subscribe")).to_have_count(0)
    shot(page, "20c-events-reader")


def test_the_live_view_prepends_events_from_the_watch_stream(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus = run_async(_bus, web_gateway, subscriber, "Live Orders")
    page = _events_page(browser, web_gateway, bus.person.email, bus.person.password)
    expect(page.locator("#live-state")).to_have_text("Live: new events appear at the top.")
    run_async(_publish, web_gateway, bus, "order.shipped", {"subject": HOSTILE})
    arrived = page.get_by_role("row").filter(has_text="order.shipped")
    expect(arrived).to_contain_text(HOSTILE)
    assert page.title() != "owned"
    expect(page.locator("#events tbody tr").first).to_contain_text("order.shipped")
    arrived.get_by_role("link").click()
    expect(page.get_by_role("heading", name="order.shipped")).to_be_visible()


def test_subscriptions_are_made_and_deleted_per_connection(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus = run_async(_bus, web_gateway, subscriber, "Subscribing Orders")
    page = _events_page(browser, web_gateway, bus.person.email, bus.person.password)
    page.get_by_role("navigation", name="Event bus").get_by_role("link", name="Subscriptions").click()
    page.get_by_label("Event type").fill("invoice.paid")
    page.get_by_label("Publisher (optional)").fill("user:nobody")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("status")).to_contain_text("Subscription created")
    group = page.get_by_role("region", name="Orders app")
    expect(group.get_by_role("row").filter(has_text="invoice.paid")).to_contain_text("user:nobody")
    shot(page, "20d-event-subscriptions")
    page.get_by_label("Event type").fill("not a type!")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("alert")).to_contain_text("not an event type")
    expect(page.get_by_label("Event type")).to_have_value("not a type!")
    page.get_by_role("button", name="Delete the subscription of Orders app to invoice.paid").click()
    expect(page.get_by_role("status")).to_contain_text("Subscription deleted")
    listed = manage(web_gateway, bus.person.api_key, "EVENT_SUBSCRIPTION_LIST")["items"]
    assert [item["eventType"] for item in listed] == ["order.*"]
