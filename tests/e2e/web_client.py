"""Driving the dashboard's HTML pages as a browser without JavaScript would: form posts that
carry the page's CSRF token, and HTMX's header when a test plays the enhanced page."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.api_client import Browser

HTMX = {"HX-Request": "true"}


async def submit(
    browser: Browser, url: str, data: dict[str, Any] | None = None, *, htmx: bool = False
) -> httpx.Response:
    """POST a form the way the page does: `csrf_token` in the body (HTMX sends the header)."""
    body = {"csrf_token": browser.csrf, **(data or {})}
    headers = {**HTMX, "X-CSRF-Token": browser.csrf} if htmx else {}
    return await browser.http.post(url, data=body, headers=headers)
