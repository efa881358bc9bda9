"""Errors on Anthropic's routes (/v1/messages…) in Anthropic's shape, so that its SDKs and Claude
Code raise and report them as they do Anthropic's own:

    {"type": "error", "error": {"type": "authentication_error", "message": "…"}}

The status is the gateway's; the type is the one Anthropic gives that status. The gateway's
`code` and `param` (and a quota refusal's numbers) stay in the error object beside them:
Anthropic's clients read `type` and `message`, a person can read the rest. Every error handler
of the app reshapes its OpenAI error for these paths (http/errors.py: `error_shapes`), and a
stream that fails after it started ends with the same object as an `error` event.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

PREFIX = "/v1/messages"
BODY_HEADERS = ("content-length", "content-type")
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""Anthropic's error type for a status; any other 4xx is invalid_request_error, 5xx api_error."""


def error_type(status: int) -> str:
    return TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def payload(response: JSONResponse) -> dict[str, Any]:
    """An error response of the gateway's (OpenAI's shape) as Anthropic's error object."""
    error: dict[str, Any] = json.loads(bytes(response.body))["error"]
    kept = {name: v for name, v in error.items() if name != "type" and v is not None}
    return {"type": "error", "error": {"type": error_type(response.status_code), **kept}}


def reshape(response: JSONResponse) -> JSONResponse:
    """The same error in Anthropic's shape, with its status and headers (`Retry-After`)."""
    headers = {k: v for k, v in response.headers.items() if k not in BODY_HEADERS}
    return JSONResponse(payload(response), response.status_code, headers)


def install(app: FastAPI) -> None:
    app.state.error_shapes[PREFIX] = reshape
