"""Rendering pages: one Jinja2 environment (autoescaping on), the layout's shared context."""

from __future__ import annotations

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


TEMPLATES.env.filters["tokens"] = _tokens


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
