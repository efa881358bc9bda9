"""A real browser on the real server: Debian's chromium driven by Playwright (never a browser
Playwright downloads), `qm serve` on a free port, screenshots under test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from quartermaster.domain.clock import SystemClock
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork
from tests.conftest import TEST_SECRET
from tests.e2e.servers import free_port, qm_server
from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FLAGS += ["--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI=true (make test installs it with apt)")
        pytest.skip("chromium is not installed (make test installs it with apt)")
    return found


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


@contextmanager
def dashboard(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`qm serve` on the test's database; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    env |= {
        "QM_DATABASE_URL": database_url,
        "QM_SECRET_KEY": TEST_SECRET,
        "QM_DATA_DIR": str(tmp_path / "data"),
        "QM_COOKIE_SECURE": "false",
        "QM_PAYMENTS": "offline",
    }
    with qm_server(env, tmp_path, port):
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def live_context(database_url: str) -> AsyncIterator[Context]:
    """Services on the server's database with the real clock, to set up what a test needs."""
    engine = create_engine(database_url)
    try:
        yield Context(UnitOfWork(engine), SystemClock(), SecurityConfig(TEST_SECRET))
    finally:
        await engine.dispose()


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_up(page: Page, base: str, email: str, name: str) -> None:
    await page.goto(f"{base}/register")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("I accept the").check()
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Account created.")).to_be_visible()


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/chat")


async def enrol_mfa(page: Page, base: str) -> None:
    """Settings → Security: the code comes from the key the page shows, as an app would."""
    await page.goto(f"{base}/settings/security")
    await page.get_by_role("button", name="Set up two-factor authentication").click()
    secret = await page.locator("#mfa-secret").inner_text()
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
