"""Provider failures as OpenAI error objects, in one table: the caller learns whether to retry,
and never sees a stack trace or an upstream's credentials."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quartermaster.http.errors import ErrorResponse, in_route_shape
from quartermaster.providers.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)

STATUS_AND_CODE: dict[type[ProviderError], tuple[int, str]] = {
    ProviderUnavailable: (502, "upstream_unavailable"),
    ProviderTimeout: (504, "upstream_timeout"),
    ProviderBadResponse: (502, "upstream_error"),
}


CALLER_FAULTS = frozenset({400, 413, 422})
"""Upstream refusals that are about the request itself; the caller can fix them."""


def _rejected(exc: ProviderRejected) -> ErrorResponse:
    """An upstream 4xx. The caller sees their own request's faults (400) and the upstream's rate
    limit (429); the upstream refusing *our* credentials or model name (401/403/404) is the
    operator's to fix, so it is a 502 — never a 401 an OpenAI client would blame on its key."""
    if exc.status in CALLER_FAULTS:
        return ErrorResponse(
            400,
            f"the model refused the request: {exc.message}",
            "invalid_request_error",
            code="upstream_rejected",
        )
    if exc.status == 429:
        return ErrorResponse(
            429,
            "the model's upstream is rate limiting us; retry shortly",
            "rate_limit_error",
            code="upstream_rate_limited",
            headers={"Retry-After": "5"},
        )
    return ErrorResponse(
        502,
        f"the model's upstream refused this gateway ({exc.status}): {exc.message}; "
        "tell your operator",
        "api_error",
        code="upstream_misconfigured",
    )


def from_provider(exc: ProviderError) -> ErrorResponse:
    if isinstance(exc, ProviderRejected):
        return _rejected(exc)
    status, code = next(v for cls, v in STATUS_AND_CODE.items() if isinstance(exc, cls))
    return ErrorResponse(
        status, f"the model's upstream failed: {exc}; try again shortly", "api_error", code=code
    )


def install(app: FastAPI) -> None:
    async def provider_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProviderError)
        return from_provider(exc)

    app.add_exception_handler(ProviderError, in_route_shape(provider_error))
