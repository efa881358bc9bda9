"""The OpenAPI schema as the app really answers: FastAPI declares a 422 with its own
`HTTPValidationError` for every operation that validates input, but every invalid request here
is a 400 carrying the one error object (http/errors.py), and so is text no field may hold
(http/text_guard.py). The generated schema says so, so clients and the fuzzer read the truth."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
INVALID = {
    "description": "The request is invalid: a field is missing, malformed or out of range, or "
    "holds a NUL character or an unpaired surrogate; `param` names it.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _declare_400(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses["400"] = INVALID
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Error"] = ERROR_SCHEMA
    return schema


def install(app: FastAPI) -> None:
    """Serve the schema with 400 where FastAPI would declare 422 (built once, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _declare_400(
                get_openapi(title=app.title, version=app.version, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
