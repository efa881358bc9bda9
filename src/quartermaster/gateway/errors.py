"""Provider failures as OpenAI error objects, in one table: the caller learns whether to retry,
and never sees a stack trace or an upstream's credentials."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from quartermaster.api.errors import ErrorResponse
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


def from_provider(exc: ProviderError) -> ErrorResponse:
    if isinstance(exc, ProviderRejected):
        status = exc.status if 400 <= exc.status < 500 else 400
        return ErrorResponse(
            status,
            f"the model refused the request: {exc.message}",
            "invalid_request_error",
            code="upstream_rejected",
        )
    status, code = next(v for cls, v in STATUS_AND_CODE.items() if isinstance(exc, cls))
    return ErrorResponse(
        status, f"the model's upstream failed: {exc}; try again shortly", "api_error", code=code
    )


def install(app: FastAPI) -> None:
    async def provider_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProviderError)
        return from_provider(exc)

    app.add_exception_handler(ProviderError, provider_error)
