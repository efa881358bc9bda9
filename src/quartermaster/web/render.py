"""Rendering pages: one Jinja2 environment (autoescaping on), the layout's shared context."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from quartermaster import __version__

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _tokens(value: Any) -> str:
    """12,345,678 — token counts are always shown whole, with separators."""
    return f"{int(value):,}" if value is not None else "—"


def counted(value: Any, noun: str) -> str:
    """ "1 document", "12,345 chunks": a count with its noun, singular only for one."""
    return f"{_tokens(value)} {noun}" + ("" if value == 1 else "s")


def money(amount: Any, currency: str = "USD") -> str:
    """$9,900.00, or 9,900.00 EUR: every price on every page has cents and separators."""
    figure = f"{Decimal(str(amount)):,.2f}"
    return f"${figure}" if currency == "USD" else f"{figure} {currency}"


def sentence(message: Any) -> str:
    """A message as a sentence: the services' messages start in lower case, so that they read
    well after "error:" in a log or a terminal; on a page they start a line."""
    text = str(message)
    return text[:1].upper() + text[1:]


TEMPLATES.env.filters |= {
    "tokens": _tokens,
    "counted": counted,
    "money": money,
    "sentence": sentence,
}


def page(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Render `template` with the viewer, their CSRF token and the app version available."""
    viewer = getattr(request.state, "viewer", None)
    shared = {
        "request": request,
        "viewer": viewer,
        "csrf": viewer.csrf if viewer else "",
        "version": __version__,
    }
    return TEMPLATES.TemplateResponse(
        request, template, {**shared, **(context or {})}, status_code=status
    )
