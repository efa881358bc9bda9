"""The dashboard in Debian's chromium against `qm serve`: sign-up, sign-in and MFA enrolment as a
person does them; an admin turned away before MFA, then saving both token columns of a row in
one click, seen in the table and the activity log; the three CSV exports; the operator's page;
and a chat answer streamed from the local model with the tokens it cost."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.services.enterprise.provisioning import provision
from quartermaster.services.identity.accounts import Registration, register
from tests.e2e.browser import (
    browser,
    dashboard,
    enrol_mfa,
    live_context,
    screenshot,
    sign_in,
    sign_up,
)
from tests.factories import BILLING_ADDRESS as ADDRESS
from tests.factories import PASSWORD

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ADMIN, MEMBER = "ada@example.org", "ben@example.org"
VIEWPORT = {"width": 1440, "height": 900}


async def provision_for(database_url: str) -> int:
    """The operator's step between sign-up and administration (through the service)."""
    async with live_context(database_url) as ctx:
        request = Provisioning(
            "Ada & Co", [ADMIN, MEMBER], [ADMIN], 2_000_000, 1_000_000, billing_address=ADDRESS
        )
        return int((await provision(ctx, Principal.command_line(), request))["org_id"])


async def test_an_admin_signs_up_enrols_and_saves_both_columns_in_one_click(
    database_url: str, tmp_path: Path
) -> None:
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            people = await chromium.new_context(viewport=VIEWPORT)
            page = await people.new_page()
            await sign_up(page, base, MEMBER, "Ben")
            await sign_up(page, base, ADMIN, "Ada")
            await provision_for(database_url)
            await sign_in(page, base, ADMIN)
            await page.goto(f"{base}/org")
            refusal = page.get_by_role("heading", name="Two-factor authentication needed")
            await expect(refusal).to_be_visible()
            way_out = page.get_by_role("link", name="Set up two-factor authentication")
            await expect(way_out).to_be_visible()
            await enrol_mfa(page, base)
            await edit_both_columns(page, base)
            await download_exports(page, tmp_path)
            await take_admin_screenshots(page, base)
            await operator_page(people, base, database_url)


async def edit_both_columns(page: Page, base: str) -> None:
    await page.goto(f"{base}/org")
    row = page.locator("tr", has_text=MEMBER)
    await row.get_by_label(f"Max tokens for {MEMBER}").fill("700,000")
    await row.get_by_label(f"Max train tokens for {MEMBER}").fill("250000")
    await row.get_by_role("button", name="Save").click()
    saved = page.locator("tr", has_text=MEMBER)
    await expect(saved.get_by_role("status")).to_have_text("Saved.")
    await expect(saved.get_by_label(f"Max tokens for {MEMBER}")).to_have_value("700,000")
    await expect(saved.get_by_label(f"Max train tokens for {MEMBER}")).to_have_value("250,000")
    await expect(page.locator("#org-cards")).to_contain_text("900,000")  # assigned, swapped in
    await page.reload()
    await expect(page.get_by_label(f"Max train tokens for {MEMBER}")).to_have_value("250,000")
    await page.goto(f"{base}/org/activity?action=allocation")
    entry = page.locator("tr", has_text="allocation.set")
    await expect(entry).to_contain_text(f"Ben ({MEMBER})")
    await expect(entry).to_contain_text("Max tokens 200,000 → 700,000")
    await expect(entry).to_contain_text("Max train tokens 0 → 250,000")


async def download_exports(page: Page, tmp_path: Path) -> None:
    await page.get_by_role("link", name="Users", exact=True).click()
    expected = {
        "Export token usage": "period",
        "Export users": "user_id",
        "Export users with tokens": "max_training_tokens",
    }
    for label, column in expected.items():
        async with page.expect_download() as started:
            await page.get_by_role("link", name=label, exact=True).click()
        download = await started.value
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        with saved.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        assert column in rows[0] if rows else column == "period", label
        if column != "period":
            assert {row["email"] for row in rows} == {ADMIN, MEMBER}
    ben = next(r for r in rows if r["email"] == MEMBER)
    assert (ben["max_inference_tokens"], ben["max_training_tokens"]) == ("700000", "250000")


async def take_admin_screenshots(page: Page, base: str) -> None:
    for path, name in (
        ("/org", "org-users"),
        ("/org/stats", "org-stats"),
        ("/org/activity", "org-activity"),
        ("/org/allocations", "org-bulk"),
        ("/settings", "settings-tokens"),
    ):
        await page.goto(f"{base}{path}")
        if path == "/org/stats":
            for table in ("By model, all time", "By route, all time"):
                await expect(page.get_by_role("heading", name=table)).to_be_visible()
        await screenshot(page, name)


async def operator_page(people: BrowserContext, base: str, database_url: str) -> None:
    async with live_context(database_url) as ctx:
        await register(ctx, Registration("ops@example.org", PASSWORD, "Olivia", True, True))
    await people.clear_cookies()
    page = await people.new_page()
    await sign_in(page, base, "ops@example.org")
    await enrol_mfa(page, base)
    await page.goto(f"{base}/operator")
    await expect(page.get_by_role("row", name="Ada & Co")).to_be_visible()
    await screenshot(page, "operator")


async def test_the_chat_streams_an_answer_from_the_local_model(
    database_url: str, tmp_path: Path
) -> None:
    async with live_context(database_url) as ctx:
        await register(ctx, Registration("cy@example.org", PASSWORD, "Cy", True))
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            page = await chromium.new_page(viewport=VIEWPORT)
            await sign_in(page, base, "cy@example.org")
            await page.get_by_label("Max answer tokens").fill("12")
            await page.get_by_label("Message").fill("Name a colour.")
            await page.get_by_role("button", name="Send").click()
            meta = page.locator(".msg.assistant .meta")
            await expect(meta).to_contain_text("tokens charged", timeout=90_000)
            answer = await page.locator(".msg.assistant").inner_text()
            assert answer.replace(await meta.inner_text(), "").strip()
            await screenshot(page, "chat")
