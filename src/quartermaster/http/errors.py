"""One error shape for every HTTP surface, OpenAI's error object:

    {"error": {"message": "...", "type": "...", "param": "...", "code": "..."}}

(Routes that speak another API register how to reshape it for their paths: `error_shapes`.)

Domain errors map to status codes in one table; validation errors name the field (a dashboard
page shows them on its error page, never as JSON); a number too large for the database's
integers (an id like 2**70) is a 400; anything unexpected becomes a 500 whose message leaks
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from quartermaster.domain import errors
from quartermaster.store.db import in_chain, lost_prepared_statement, root_cause

log = logging.getLogger(__name__)

STATUS_AND_TYPE: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.InvalidInput: (400, "invalid_request_error"),
    errors.NotAuthenticated: (401, "authentication_error"),
    errors.PermissionDenied: (403, "permission_error"),
    errors.NotFound: (404, "not_found_error"),
    errors.Conflict: (409, "conflict_error"),
    errors.PaymentRequired: (402, "payment_required"),
    errors.QuotaExceeded: (429, "insufficient_quota"),
    errors.TooManyRequests: (429, "rate_limit_error"),
    errors.ServiceUnavailable: (503, "service_unavailable"),
}


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ErrorResponse(JSONResponse):
    """A JSON response carrying the shared error object."""

    def __init__(
        self,
        status_code: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = error_body(message, type_, param, code)
        body["error"].update(extra or {})
        super().__init__(body, status_code=status_code, headers=headers)


def _status_and_type(exc: errors.DomainError) -> tuple[int, str]:
    return next(value for cls, value in STATUS_AND_TYPE.items() if isinstance(exc, cls))


def domain_error_body(exc: errors.DomainError) -> dict[str, Any]:
    """The error object the API answers `exc` with (`qm … --json` prints the same)."""
    _, type_ = _status_and_type(exc)
    body = error_body(exc.message, type_, exc.param, exc.code or type_)
    body["error"].update(exc.details)
    return body


def from_domain(exc: errors.DomainError) -> ErrorResponse:
    status, type_ = _status_and_type(exc)
    code = exc.code or type_
    retry = exc.details.get("retry_after_s")
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return ErrorResponse(status, exc.message, type_, exc.param, code, exc.details or None, headers)


API_PATHS = ("/api/", "/v1/", "/healthz")


def _page_renderer(request: Request) -> Callable[[Request, errors.DomainError], Response] | None:
    """The dashboard's error page for browser paths (set by the web adapter), else None."""
    if request.url.path.startswith(API_PATHS):
        return None
    renderer: Callable[[Request, errors.DomainError], Response] | None = getattr(
        request.app.state, "render_error", None
    )
    return renderer


def _overflowed(exc: BaseException) -> bool:
    """Whether a Python int no database column can hold caused `exc` (SQLite raises the
    OverflowError itself; asyncpg's is in the DBAPIError's chain)."""
    return in_chain(exc, lambda seen: isinstance(seen, OverflowError))


def database_misconfigured() -> ErrorResponse:
    """503, failing closed, with the fix in the operator's log: the statement failed inside its
    transaction, so nothing was charged or changed."""
    log.error(
        "a prepared statement vanished between transactions: the database URL reaches PgBouncer "
        "in transaction mode; set QM_DB_PGBOUNCER=1 on every process (docs/deploy.md)"
    )
    return ErrorResponse(
        503,
        "the database connection is misconfigured; nothing was charged or changed, and the "
        "operator's log says what to fix",
        "service_unavailable",
        code="database_misconfigured",
    )


def database_unavailable(exc: BaseException) -> ErrorResponse:
    """503, failing closed: also the error event that ends a stream (gateway/chat.py)."""
    cause = root_cause(exc)
    log.warning("database unavailable: %s: %s", type(cause).__name__, cause)
    return ErrorResponse(
        503,
        "the database is unreachable; nothing was charged or changed, retry shortly",
        "service_unavailable",
        code="database_unavailable",
        headers={"Retry-After": "5"},
    )


DATABASE_UNREACHABLE = (OperationalError, InterfaceError, OSError, TimeoutError)
"""What a database that cannot serve raises, wrapped by SQLAlchemy or not: 503, never 500."""

ErrorShape = Callable[[JSONResponse], JSONResponse]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def in_route_shape(handler: Handler) -> Handler:
    """`handler`, its JSON error reshaped for the API the request's path speaks: OpenAI's, unless
    an adapter registered another for the path's prefix in `app.state.error_shapes`."""

    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        shapes: dict[str, ErrorShape] = request.app.state.error_shapes
        path = request.url.path
        shape = next((s for prefix, s in shapes.items() if path.startswith(prefix)), None)
        return shape(response) if shape and isinstance(response, JSONResponse) else response

    return handle


OWN_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
"""Validation errors whose type is already the code OpenAI gives them (gateway/schemas.py)."""


def install(app: FastAPI) -> None:
    """Register the handlers that make every failure use the shared shape (pages get HTML)."""

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.DomainError)
        renderer = _page_renderer(request)
        return renderer(request, exc) if renderer else from_domain(exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first: Mapping[str, Any] = (
            exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        )
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        param = ".".join(loc) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        renderer = _page_renderer(request)
        if renderer is not None:  # a form a page sent: an error page, never the JSON object
            return renderer(request, errors.InvalidInput(message, param=param))
        code = first["type"] if first.get("type") in OWN_CODES else "invalid_value"
        return ErrorResponse(400, message, "invalid_request_error", param, code)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        renderer = _page_renderer(request)
        if renderer is not None and exc.status_code == 404:
            return renderer(request, errors.NotFound("there is no such page"))
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return ErrorResponse(
            exc.status_code, str(exc.detail), type_, headers=getattr(exc, "headers", None)
        )

    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        return database_unavailable(exc)

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ErrorResponse(500, "internal error; the operator's log has the details", "api_error")

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if lost_prepared_statement(exc):
            return database_misconfigured()
        if not _overflowed(exc):
            return await unexpected_error(request, exc)
        return ErrorResponse(
            400,
            "a number in the request is too large",
            "invalid_request_error",
            None,
            "invalid_value",
        )

    app.state.error_shapes = {}
    app.add_exception_handler(errors.DomainError, in_route_shape(domain_error))
    app.add_exception_handler(RequestValidationError, in_route_shape(validation_error))
    app.add_exception_handler(StarletteHTTPException, in_route_shape(http_error))
    for unreachable in DATABASE_UNREACHABLE:
        app.add_exception_handler(unreachable, in_route_shape(database_down))
    app.add_exception_handler(OverflowError, in_route_shape(database_error))
    app.add_exception_handler(DBAPIError, in_route_shape(database_error))
    app.add_exception_handler(Exception, in_route_shape(unexpected_error))
