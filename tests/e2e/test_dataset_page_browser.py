"""The dataset page's upload in Debian's chromium against `qm serve` with the local model: the bar
names the stage and counts chunks embedded up to the end, the result is listed; a network failure
and a reply that is not JSON are each said plainly; one document is deleted with its button."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from quartermaster.domain.principal import Principal
from quartermaster.services import datasets
from tests.e2e.browser import browser, dashboard, live_context, sign_in
from tests.e2e.test_dataset_uploads_api import long_text
from tests.factories import add_org

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
WATCH = """() => {
  window.statusSeen = [];
  const status = document.getElementById("upload-status");
  new MutationObserver(() => window.statusSeen.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""


async def new_dataset(database_url: str) -> tuple[str, int]:
    """A member of an org with training tokens, and a dataset of theirs."""
    async with live_context(database_url) as ctx:
        org = await add_org(ctx, admins=1, members=1)
        owner = Principal(org.member_ids[0], is_operator=False, mfa_verified=False, via="web")
        return org.member_emails[0], (await datasets.create(ctx, owner, "Manuals")).id


async def upload(page: Page, base: str, dataset_id: int, path: Path) -> None:
    await page.goto(f"{base}/datasets/{dataset_id}")
    await page.evaluate(WATCH)
    await page.locator("#upload-form input[type=file]").set_input_files(str(path))
    await page.get_by_role("button", name="Upload").click()


async def test_the_bar_counts_chunks_embedded_and_names_the_stage(
    database_url: str, tmp_path: Path
) -> None:
    email, dataset_id = await new_dataset(database_url)
    document = tmp_path / "long.txt"
    document.write_bytes(long_text(700))
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            page = await chromium.new_page()
            await sign_in(page, base, email)
            await upload(page, base, dataset_id, document)
            status = page.locator("#upload-status")
            await expect(status).to_have_text("Done: 1 of 1 files stored (100 %).", timeout=60_000)
            seen: list[str] = await page.evaluate("window.statusSeen")  # before the page reloads
            embedding = [text for text in seen if text.startswith("Embedding long.txt: ")]
            assert any(" of " in text and "chunks (file 1 of 1" in text for text in embedding), seen
            assert embedding[-1].endswith("100 % of the upload)"), seen
            assert any(": 0 of " in text for text in embedding), seen  # streamed, not at the end
            assert seen.index(embedding[0]) > 0  # "Reading" and "Sending" came first

            await expect(page.get_by_role("cell", name="long.txt", exact=True)).to_be_visible(
                timeout=10_000
            )
            page.on("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("button", name="Delete long.txt").click()
            await expect(page.get_by_text("No documents yet.")).to_be_visible()


async def test_a_network_failure_and_a_reply_not_json_are_said_plainly(
    database_url: str, tmp_path: Path
) -> None:
    email, dataset_id = await new_dataset(database_url)
    document = tmp_path / "note.txt"
    document.write_text("The boiler is serviced every May.")
    with dashboard(database_url, tmp_path) as base:
        async with browser() as chromium:
            page = await chromium.new_page()
            await sign_in(page, base, email)
            documents = f"**/api/datasets/{dataset_id}/documents"

            async def gateway_page(route: Route) -> None:
                await route.fulfill(
                    status=502, body="<h1>Bad gateway</h1>", content_type="text/html"
                )

            await page.route(documents, gateway_page)
            await upload(page, base, dataset_id, document)
            status = page.locator("#upload-status")
            await expect(status).to_contain_text("not understood (HTTP 502, not JSON)")
            await expect(status).to_contain_text("were not charged")

            await page.unroute(documents)
            await page.route(documents, lambda route: route.abort("connectionreset"))
            await upload(page, base, dataset_id, document)
            await expect(status).to_contain_text("could not be reached (network error)")
