"""A real browser on the real server: Debian's chromium driven by Playwright (never a browser
Playwright downloads), `qm serve` on a free port, screenshots under test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from quartermaster.domain.clock import SystemClock
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork
from tests.conftest import TEST_SECRET
from tests.e2e.servers import free_port, qm_server

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
