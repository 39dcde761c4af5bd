"""The event bus in a real browser: events published over the API are listed and opened with their deliveries;
a dead delivery is redelivered and a scheduled event cancelled from the page; data is shown escaped; a person
whose role only reads sees no buttons; the live view prepends events from the watch stream."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from support.browser import add_member, log_in, run_async, shot
from support.dashboard_events import HOSTILE, bus_with_subscriber, dead_and_scheduled, publish
from support.gateway import Gateway, Upstream, manage


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
    bus, failed_id, later_id = run_async(dead_and_scheduled, web_gateway, subscriber, "Order Works")
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
    bus, failed_id, later_id = run_async(dead_and_scheduled, web_gateway, subscriber, "Read Only Orders")
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
    bus = run_async(bus_with_subscriber, web_gateway, subscriber, "Live Orders")
    page = _events_page(browser, web_gateway, bus.person.email, bus.person.password)
    expect(page.locator("#live-state")).to_have_text("Live: new events appear at the top.")
    run_async(publish, web_gateway, bus, "order.shipped", {"subject": HOSTILE})
    arrived = page.get_by_role("row").filter(has_text="order.shipped")
    expect(arrived).to_contain_text(HOSTILE)
    assert page.title() != "owned"
    expect(page.locator("#events tbody tr").first).to_contain_text("order.shipped")
    arrived.get_by_role("link").click()
    expect(page.get_by_role("heading", name="order.shipped")).to_be_visible()


def test_subscriptions_are_made_and_deleted_per_connection(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus = run_async(bus_with_subscriber, web_gateway, subscriber, "Subscribing Orders")
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

    # A webhook: its signing secret is shown once, then only the URL's host.
    page.get_by_label("A webhook").check()
    page.get_by_label("Webhook URL").fill("https://localhost:9/hooks/orders?token=in-the-url")
    page.get_by_label("Event type").fill("invoice.*")
    page.get_by_role("button", name="Subscribe").click()
    secret = page.get_by_role("textbox", name="Signing secret").input_value()
    assert len(secret) >= 24
    hooks = page.get_by_role("region", name="Webhooks")
    expect(hooks.get_by_role("row").filter(has_text="invoice.*")).to_contain_text("localhost")
    page.reload()
    expect(page.get_by_role("textbox", name="Signing secret")).to_have_count(0)
    assert secret not in page.content() and "in-the-url" not in page.content()


def test_an_automation_is_shown_with_its_triggers_and_recent_runs(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus = run_async(bus_with_subscriber, web_gateway, subscriber, "Automated Orders")
    key = bus.person.api_key
    made = manage(
        web_gateway,
        key,
        "AUTOMATION_CREATE",
        name="Count orders",
        connectionId=bus.connection_id,
        toolName="stats",
        arguments={"why": HOSTILE},
    )
    manage(web_gateway, key, "AUTOMATION_TRIGGER_ADD", automationId=made["id"], eventType="order.*")
    run = manage(web_gateway, key, "AUTOMATION_RUN", id=made["id"], event={"type": "order.tested"})
    assert run["status"] == "ok", run
    page = _events_page(browser, web_gateway, bus.person.email, bus.person.password)
    page.get_by_role("navigation", name="Event bus").get_by_role("link", name="Automations").click()
    row = page.get_by_role("row").filter(has_text="Count orders")
    expect(row).to_contain_text("stats on Orders app")
    expect(row).to_contain_text("enabled")
    row.get_by_role("link", name="Count orders").click()
    expect(page.get_by_role("heading", name="Count orders")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("events order.*")
    expect(page.locator("pre")).to_contain_text(HOSTILE)
    runs = page.get_by_role("region", name="Recent runs")
    expect(runs.get_by_role("row").filter(has_text="order.tested")).to_contain_text("ok")
    shot(page, "20e-automation")


def test_a_dead_delivery_is_redelivered_with_javascript_off(
    browser: Browser, web_gateway: Gateway, subscriber: Upstream
) -> None:
    bus, failed_id, _later = run_async(dead_and_scheduled, web_gateway, subscriber, "Scriptless Orders")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    log_in(page, web_gateway, bus.person.email, bus.person.password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Events").click()
    expect(page.locator("#live-state")).to_have_text("")  # no script, no stream: the list is the page
    page.get_by_role("row").filter(has_text="order.created").get_by_role("link").click()
    page.get_by_role("button", name="Redeliver all dead").click()
    expect(page.get_by_role("status")).to_contain_text("pending again")
    assert manage(web_gateway, bus.person.api_key, "EVENT_GET", eventId=failed_id)["deliveries"][0]["status"] == (
        "pending"
    )
    context.close()
