"""Members and roles in the browser: a custom role built with the permission picker decides what a member can do."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conftest import add_connection
from support.browser import SCREENSHOTS, add_member, run_async
from support.gateway import Gateway, Upstream, manage
from support.oauth import new_person
from support.secrets import remember_secret


def log_in(page: Page, gateway: Gateway, email: str, password: str) -> None:
    page.goto(f"{gateway.url}/app")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()


def test_a_custom_role_from_the_picker_decides_what_a_member_may_call(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    owner = run_async(new_person, web_gateway, "People Inc")
    connection = run_async(add_connection, web_gateway, owner.api_key, upstream, title="Team tools")
    member = run_async(add_member, web_gateway, owner.organization_id)
    leaver = run_async(add_member, web_gateway, owner.organization_id)
    admin = browser.new_context(viewport={"width": 1280, "height": 860})
    page = admin.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, web_gateway, owner.email, owner.password)
    nav = page.get_by_role("navigation", name="Dashboard")

    # A role that may list connections and call one tool of one connection.
    nav.get_by_role("link", name="Roles").click()
    page.get_by_label("Name", exact=True).fill("echo-caller")
    page.get_by_label("Description").fill("May call echo on Team tools")
    for value in ("self|COLLECTION_CONNECTIONS_LIST", "self|COLLECTION_CONNECTIONS_GET", f"{connection['id']}|echo"):
        page.locator(f'input[name="perm"][value="{value}"]').check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("status")).to_have_text("Role saved.")
    expect(page.get_by_role("row").filter(has_text="echo-caller")).to_contain_text("Team tools: 1 tool")

    # Members: invite someone by email (a link to send, not a membership), change roles, remove.
    nav.get_by_role("link", name="Members").click()
    page.get_by_label("Email", exact=True).fill("newcomer@example.com")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("(newcomer@example.com) created")
    sent = remember_secret(page.get_by_role("textbox", name="Invitation link").input_value())
    assert sent.startswith(f"{web_gateway.url}/invite/")
    expect(page.get_by_role("row").filter(has_text="newcomer@example.com")).to_contain_text("member")
    # Reloading shows the invitation without its link, and invites no one twice (the form redirected).
    page.reload()
    expect(page.get_by_role("row").filter(has_text="newcomer@example.com")).to_have_count(1)
    expect(page.get_by_role("textbox", name="Invitation link")).to_have_count(0)
    assert sent not in page.content()
    assert len(manage(web_gateway, owner.api_key, "INVITATION_LIST")["items"]) == 1
    page.get_by_role("button", name="Withdraw the member invitation for newcomer@example.com").click()
    expect(page.get_by_role("row").filter(has_text="newcomer@example.com")).to_have_count(0)
    page.get_by_label(f"Role of {member.email}").select_option("echo-caller")
    page.get_by_role("row").filter(has_text=member.email).get_by_role("button", name="Change").click()
    expect(page.get_by_role("status")).to_have_text("Role changed.")
    page.get_by_role("button", name=f"Remove {leaver.email}").click()
    expect(page.get_by_role("status")).to_have_text("Member removed.")
    expect(page.get_by_role("row").filter(has_text=leaver.email)).to_have_count(0)
    page.get_by_label(f"Role of {owner.email}").select_option("member")
    page.get_by_role("row").filter(has_text=owner.email).get_by_role("button", name="Change").click()
    expect(page.get_by_role("alert")).to_contain_text("last owner")
    shot_path = SCREENSHOTS / "09b-members-error.png"
    page.screenshot(path=str(shot_path), full_page=True)

    # The member now calls echo, and nothing else.
    visitor = browser.new_context(viewport={"width": 1280, "height": 860})
    as_member = visitor.new_page()
    log_in(as_member, web_gateway, member.email, member.password)
    as_member.get_by_role("link", name="Team tools").click()
    as_member.get_by_role("link", name="Try echo").click()
    as_member.get_by_label("text", exact=True).fill("allowed")
    as_member.get_by_role("button", name="Call echo").click()
    expect(as_member.get_by_role("region", name="Result ok").locator("pre").first).to_have_text("allowed")
    as_member.get_by_role("link", name="Team tools").click()
    as_member.get_by_role("link", name="Try add").click()
    as_member.get_by_role("button", name="Call add").click()
    refused = as_member.get_by_role("region", name="Result error")
    expect(refused.get_by_role("alert")).to_contain_text(f"{connection['id']}:add")
    expect(as_member.get_by_role("button", name="Test connection")).to_have_count(0)
    visitor.close()
    admin.close()


def test_an_invitation_link_adds_a_new_person_once(browser: Browser, web_gateway: Gateway) -> None:
    owner = run_async(new_person, web_gateway, "Invite Co")
    admin = browser.new_context(viewport={"width": 1280, "height": 860})
    page = admin.new_page()
    log_in(page, web_gateway, owner.email, owner.password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Members").click()
    page.get_by_label("Role", exact=True).last.select_option("admin")
    page.get_by_role("button", name="Create invitation link").click()
    link = remember_secret(page.get_by_role("textbox", name="Invitation link").input_value())
    assert link.startswith(f"{web_gateway.url}/invite/mgi_")
    expect(page.get_by_role("row").filter(has_text="anyone with the link")).to_contain_text("admin")
    page.screenshot(path=str(SCREENSHOTS / "09c-invitation-link.png"), full_page=True)
    # Reloading shows the invitation without its link, and makes no second one (the form redirected).
    page.reload()
    expect(page.get_by_role("row").filter(has_text="anyone with the link")).to_have_count(1)
    expect(page.get_by_role("textbox", name="Invitation link")).to_have_count(0)
    assert link not in page.content()
    assert len(manage(web_gateway, owner.api_key, "INVITATION_LIST")["items"]) == 1

    newcomer = browser.new_context(viewport={"width": 1280, "height": 760})
    joining = newcomer.new_page()
    joining.goto(link)
    expect(joining.get_by_role("heading", name="Join Invite Co")).to_be_visible()
    joining.screenshot(path=str(SCREENSHOTS / "16-invitation.png"), full_page=True)
    joining.get_by_label("Email").fill("joiner@example.com")
    joining.get_by_label("Password").fill("short")
    joining.locator("#password").evaluate("element => element.removeAttribute('minlength')")
    joining.get_by_role("button", name="Create account and join").click()
    expect(joining.get_by_role("alert")).to_contain_text("at least 10")
    joining.get_by_label("Password").fill("a long enough password")
    joining.get_by_role("button", name="Create account and join").click()
    expect(joining.get_by_role("status")).to_have_text("Welcome! You joined this organization.")
    expect(joining.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Members")).to_be_visible()
    again = joining.goto(link)
    assert again is not None and again.status == 404
    expect(joining.get_by_text("was used, withdrawn or has expired")).to_be_visible()
    newcomer.close()

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Members").click()
    expect(page.get_by_role("row").filter(has_text="joiner@example.com")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="anyone with the link")).to_have_count(0)
    admin.close()


def test_an_admin_is_offered_no_control_over_an_owner(browser: Browser, web_gateway: Gateway) -> None:
    owner = run_async(new_person, web_gateway, "Owned Inc")
    admin = run_async(add_member, web_gateway, owner.organization_id, "admin")
    member = run_async(add_member, web_gateway, owner.organization_id)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    log_in(page, web_gateway, admin.email, admin.password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Members").click()

    owner_row = page.get_by_role("row").filter(has_text=owner.email)
    expect(owner_row).to_contain_text("owner")
    expect(owner_row.get_by_role("button")).to_have_count(0)
    expect(owner_row.get_by_role("combobox")).to_have_count(0)
    # The member's row keeps its controls, without `owner` among the choices (only owners hand it out).
    member_row = page.get_by_role("row").filter(has_text=member.email)
    expect(member_row.get_by_role("button", name="Change")).to_be_visible()
    expect(member_row.get_by_role("button", name=f"Remove {member.email}")).to_be_visible()
    choices = page.get_by_label(f"Role of {member.email}").locator("option").all_inner_texts()
    assert "owner" not in choices and "admin" in choices, choices
    invite_choices = page.get_by_label("Role", exact=True).first.locator("option").all_inner_texts()
    assert "owner" not in invite_choices, invite_choices
    context.close()
