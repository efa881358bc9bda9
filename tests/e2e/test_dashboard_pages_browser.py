"""What a person sees on every page, in Debian's chromium at 1280 px against `qm serve`: each page
fits the window (a long member name included), red buttons keep a readable label, no page shows
an API path or raw JSON, errors start with a capital, and the forms that broke work: the model
allow-list, paying for a plan, the token requests and the activity log in names and words, the
usage chart drawn as bars (or "No usage yet"), and the way to enrolment for a new admin."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.domain.types import Term, TokenKind
from quartermaster.services import datasets, ledger
from quartermaster.services.enterprise import allocations, membership, token_requests
from quartermaster.services.enterprise.provisioning import provision
from quartermaster.services.identity import api_keys
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.plans import subscriptions
from tests.e2e.browser import browser, dashboard, enrol_mfa, live_context, screenshot, sign_in
from tests.factories import BILLING_ADDRESS as ADDRESS
from tests.factories import PASSWORD

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
EMBEDDING, DATASETS = "all-minilm-l6-v2", Route.DATASETS
WIDTH = 1280
VIEWPORT = {"width": WIDTH, "height": 800}
ADMIN, MEMBER, OPERATOR, INDIVIDUAL = (
    "ada@example.org",
    "bartholomew.fitzgerald-worthington.the-third@subsidiary.example.org",
    "ops@example.org",
    "ivy@example.org",
)
LONG_NAME = "Bartholomew Maximilian Fitzgerald-Worthington the Third"
CONTRAST = """el => {
  const rgb = s => s.match(/[0-9.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const style = getComputedStyle(el);
  const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""
BAR_WIDTH = """canvas => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const columns = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === 0x0b && data[i + 1] === 0x5c && data[i + 2] === 0xad) {
      columns.add((i / 4) % canvas.width);
    }
  }
  return columns.size / window.devicePixelRatio;
}"""
"""How wide the inference colour is drawn, in CSS pixels: a bar, not a dot or a hairline."""


@dataclass(frozen=True)
class World:
    org_id: int
    member_id: int
    dataset_id: int


async def people_and_org(database_url: str) -> World:
    """Everyone signs up as a person would (through the services); Ada's org has Bartholomew,
    with a pending request and an API key; Ada owns a dataset; Ivy is on an unpaid plan."""
    async with live_context(database_url) as ctx:
        ada = await register(ctx, Registration(ADMIN, PASSWORD, "Ada Lovelace", True))
        bart = await register(ctx, Registration(MEMBER, PASSWORD, LONG_NAME, True))
        await register(ctx, Registration(OPERATOR, PASSWORD, "Olivia", True, is_operator=True))
        ivy = await register(ctx, Registration(INDIVIDUAL, PASSWORD, "Ivy", True))
        request = Provisioning(
            "Ada & Co", [ADMIN, MEMBER], [ADMIN], 2_000_000, 1_000_000, billing_address=ADDRESS
        )
        org_id = int((await provision(ctx, Principal.command_line(), request))["org_id"])
        member = Principal(bart, False, False, "session")
        await token_requests.ask(ctx, member, TokenKind.INFERENCE, 300_000, "the pilot")
        await api_keys.create(ctx, member, "laptop")
        owner = Principal(ada, False, False, "session")
        dataset = await datasets.create(ctx, owner, "Handbook", shared_with_org=False)
        individual = Principal(ivy, False, False, "session")
        await subscriptions.change_plan(ctx, individual, "plus", Term.MONTHLY)
    return World(org_id, bart, dataset.id)


async def fits_and_reads_well(page: Page, path: str) -> None:
    """The page fits 1280 px, shows no API path or raw JSON, and its errors start capitalised."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, (path, width)
    text = await page.locator("body").inner_text()
    assert "/api/" not in text, path
    assert '{"error"' not in text, path
    for alert in await page.locator(".alert.error:visible").all_inner_texts():
        assert alert.strip()[:1].isupper(), (path, alert)


async def readable(page: Page, button: str) -> None:
    """A solid button's label stands out from its background (WCAG AA: 4.5:1)."""
    found = page.get_by_role("button", name=button, exact=True).first
    ratio = await found.evaluate(CONTRAST)
    assert ratio >= 4.5, (button, ratio)


async def test_every_page_fits_reads_and_works_for_an_admin_and_an_operator(
    database_url: str, tmp_path: Path
) -> None:
    world = await people_and_org(database_url)
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            admin = await (await chromium.new_context(viewport=VIEWPORT)).new_page()
            await signed_out_pages(admin, base)
            await sign_in(admin, base, ADMIN)
            await led_to_enrolment(admin, base)
            await enrol_mfa(admin, base)
            await empty_chart(admin, base)
            for path in (
                "/chat",
                "/datasets",
                f"/datasets/{world.dataset_id}",
                "/settings",
                "/settings/security",
                "/settings/keys",
                "/settings/logins",
                "/org",
                "/org/allocations",
                "/org/requests",
                "/org/models",
                "/org/stats",
                "/org/activity",
            ):
                await admin.goto(f"{base}{path}")
                await fits_and_reads_well(admin, path)
            await the_long_row_saves_on_screen(admin, base)
            await admin.goto(f"{base}/datasets/{world.dataset_id}")
            await readable(admin, "Delete dataset")
            await requests_by_name(admin, base)
            await allow_list(admin, base)
            await usage_as_bars(admin, base, database_url, world.member_id)
            operator = await (await chromium.new_context(viewport=VIEWPORT)).new_page()
            await operator_pages(operator, base, world)
            await activity_in_words(admin, base)
            await training_this_month_in_the_table(admin, base, database_url, world)


async def signed_out_pages(page: Page, base: str) -> None:
    for path in ("/login", "/register", "/terms"):
        await page.goto(f"{base}{path}")
        await fits_and_reads_well(page, path)


async def led_to_enrolment(page: Page, base: str) -> None:
    """An admin without MFA lands on Chat: no organization entry, a clear way to enrol."""
    sidebar = page.get_by_role("navigation", name="Main")
    await expect(sidebar.get_by_role("link", name="Organization")).to_have_count(0)
    await expect(page.locator("#enrol-prompt")).to_contain_text("You administer your organization")
    await page.locator("#enrol-prompt").get_by_role("link").click()
    await expect(
        page.get_by_role("button", name="Set up two-factor authentication")
    ).to_be_visible()
    await expect(page.locator(".manage")).to_contain_text("its pages open once two-factor")
    await expect(page.get_by_role("link", name="Manage your organization")).to_have_count(0)


async def empty_chart(page: Page, base: str) -> None:
    await page.goto(f"{base}/org/stats")
    await expect(page.get_by_text("No usage yet: the chart starts")).to_be_visible()
    await expect(page.locator("#usage-chart")).to_have_count(0)
    assert "docs/" not in await page.locator("main").inner_text()


async def the_long_row_saves_on_screen(page: Page, base: str) -> None:
    await page.goto(f"{base}/org")
    row = page.locator("tr", has_text=MEMBER)
    await expect(row.get_by_label(f"Max tokens for {MEMBER}")).to_have_value("200,000")
    save = row.get_by_role("button", name="Save")
    box = await save.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= WIDTH, box
    await row.get_by_label(f"Max tokens for {MEMBER}").fill("250,000")
    await save.click()
    await expect(page.locator("tr", has_text=MEMBER).get_by_role("status")).to_have_text("Saved.")
    await expect(page.get_by_role("columnheader", name="Monthly training")).to_be_visible()
    await screenshot(page, "org-users-1280")


async def requests_by_name(page: Page, base: str) -> None:
    await page.goto(f"{base}/org/requests")
    pending = page.locator("tr", has_text="the pilot")
    await expect(pending).to_contain_text(LONG_NAME)
    await expect(pending).to_contain_text(MEMBER)
    await expect(pending.get_by_label("Tokens")).to_have_value("300,000")
    await readable(page, "Deny")


async def allow_list(page: Page, base: str) -> None:
    """Tick one, both, then none: each saves, and the page says what members may use now."""
    await page.goto(f"{base}/org/models")
    boxes = page.locator("fieldset input[type=checkbox]")
    count = await boxes.count()
    assert count >= 2
    await boxes.nth(0).check()
    await page.get_by_role("button", name="Save allow-list").click()
    await expect(page.get_by_role("status")).to_have_text("Allow-list saved.")
    await expect(page.get_by_text("Now: only the 1 ticked below.")).to_be_visible()
    for index in range(count):
        await page.locator("fieldset input[type=checkbox]").nth(index).check()
    await page.get_by_role("button", name="Save allow-list").click()
    await expect(page.get_by_text(f"Now: only the {count} ticked below.")).to_be_visible()
    for index in range(count):
        await page.locator("fieldset input[type=checkbox]").nth(index).uncheck()
    await page.get_by_role("button", name="Save allow-list").click()
    await expect(page.get_by_role("status")).to_have_text("Every enabled model is open to members.")
    await fits_and_reads_well(page, "/org/models")


async def usage_as_bars(page: Page, base: str, database_url: str, member: int) -> None:
    """One month of usage is two labelled bars, not a lone dot; the legend has no empty cell."""
    async with live_context(database_url) as ctx:
        await ledger.reserve(ctx, member, "smollm2-135m-instruct", 4_000, 500, "chart-1")
        await ledger.settle(ctx, "chart-1", 4_000, 500)
    await page.goto(f"{base}/org/stats")
    canvas = page.locator("#usage-chart canvas")
    await expect(canvas).to_have_count(1)
    assert await canvas.evaluate(BAR_WIDTH) >= 30
    legend = await page.locator("#usage-chart .u-legend").inner_text()
    assert "Value" not in legend
    assert "Inference" in legend
    await screenshot(page, "org-stats-one-month")


async def operator_pages(page: Page, base: str, world: World) -> None:
    await sign_in(page, base, OPERATOR)
    await enrol_mfa(page, base)
    for path in ("/operator", f"/operator/orgs/{world.org_id}", f"/org?org={world.org_id}"):
        await page.goto(f"{base}{path}")
        await fits_and_reads_well(page, path)
    await page.goto(f"{base}/operator")
    provision = page.locator("form[action='/operator/orgs']")
    await expect(provision.get_by_label("Billing address")).to_have_attribute("required", "")
    await expect(provision.get_by_label("Additional information")).to_be_visible()
    await readable(page, "Reset MFA")
    page.once("dialog", lambda dialog: dialog.accept())
    form = page.locator("form[action='/operator/users/reset-mfa']")
    await form.get_by_label("Email").fill(MEMBER)
    await form.get_by_role("button", name="Reset MFA").click()
    await expect(page.get_by_role("status")).to_contain_text("Two-factor authentication reset")
    await page.goto(f"{base}/operator/orgs/{world.org_id}")
    await expect(page.get_by_text(f"billing: {ADDRESS}")).to_be_visible()
    topup = page.get_by_role("form", name="Top-up")
    await topup.get_by_label("Inference tokens").fill("2,000,000")
    await topup.get_by_role("button").click()
    await expect(page.get_by_role("status")).to_contain_text("for $90.00.")
    await expect(page.locator("tr", has_text="topup")).to_contain_text("$90.00")


async def activity_in_words(page: Page, base: str) -> None:
    """Keys, MFA resets and allocations appear in the org's log, by name, in words."""
    await page.goto(f"{base}/org/activity?action=api_key")
    key = page.locator("tr", has_text="api_key.create")
    await expect(key).to_contain_text(LONG_NAME)
    await expect(key).to_contain_text("Name: laptop")
    await page.goto(f"{base}/org/activity?action=mfa")
    reset = page.locator("tr", has_text="mfa.reset")
    await expect(reset).to_contain_text(f"Olivia ({OPERATOR})")
    await expect(reset).to_contain_text(f"{LONG_NAME} ({MEMBER})")
    await expect(reset).to_contain_text("Two-factor authentication")
    await page.goto(f"{base}/org/activity?action=allocation")
    await expect(page.locator("tr", has_text="allocation.set")).to_contain_text(
        "Max tokens 200,000 → 250,000"
    )
    text = await page.locator("main").inner_text()
    assert not re.search(r"\buser \d+\b", text), text
    await fits_and_reads_well(page, "/org/activity")


async def training_this_month_in_the_table(
    page: Page, base: str, database_url: str, world: World
) -> None:
    """The user table names the caps as the token-administration guide does and shows the
    training tokens used this month, the same number as the users-with-tokens CSV."""
    operator = Principal.command_line()
    async with live_context(database_url) as ctx:
        rows = await membership.list_members(ctx, operator, world.org_id)
        version = next(r["version"] for r in rows if r["user_id"] == world.member_id)
        caps = allocations.CapsEdit(250_000, 10_000, version)
        await allocations.set_allocation(ctx, operator, world.org_id, world.member_id, caps)
        await ledger.reserve(ctx, world.member_id, EMBEDDING, 3_000, 0, "train-1", route=DATASETS)
        await ledger.settle(ctx, "train-1", 3_000, 0)
    await page.goto(f"{base}/org")
    headers = [h.strip() for h in await page.locator("table.members thead th").all_inner_texts()]
    assert {"Max tokens", "Max train tokens"} <= set(headers), headers
    cell = page.locator("tr", has_text=MEMBER).locator("td").nth(headers.index("Monthly training"))
    await expect(cell).to_have_text("1,500")  # 3,000 tokens embedded at the training rate 0.5
    export = await page.request.get(f"{base}/api/orgs/{world.org_id}/exports/users-tokens.csv")
    text = (await export.body()).decode("utf-8-sig")
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["email"] == MEMBER)
    assert row["training_this_month"] == "1500"


async def test_an_individual_pays_for_their_plan_from_the_page(
    database_url: str, tmp_path: Path
) -> None:
    await people_and_org(database_url)
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            page = await chromium.new_page(viewport=VIEWPORT)
            await sign_in(page, base, INDIVIDUAL)
            await page.goto(f"{base}/settings")
            unpaid = page.locator("#unpaid")
            await expect(unpaid).to_contain_text("Your plus plan is not paid for")
            await expect(page.get_by_text("Not paid yet")).to_have_count(2)
            plans = await page.get_by_label("Plan").locator("option").all_inner_texts()
            assert any("$0.00 a month" in p for p in plans), plans
            assert any("$20.00 a month or $200.00 a year" in p for p in plans), plans
            await fits_and_reads_well(page, "/settings")
            await unpaid.get_by_role("button", name="Pay $20.00 now").click()
            await expect(page.get_by_role("status")).to_contain_text("Paid $20.00 for")
            await expect(page.locator("#unpaid")).to_have_count(0)
            await expect(page.get_by_text("2,000,000 left")).to_be_visible()
            payment = page.locator("tr", has_text="plus")
            await expect(payment.locator("code")).to_contain_text("offline-")
            await fits_and_reads_well(page, "/settings")
