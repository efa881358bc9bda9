"""The gateway's errors in Anthropic's shape: the type its SDKs expect for the status, and the
gateway's own code, numbers and headers kept."""

from __future__ import annotations

import json

import pytest

from quartermaster.gateway.anthropic_errors import reshape
from quartermaster.http.errors import ErrorResponse


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
    ],
)
def test_each_status_has_anthropics_type(status: int, kind: str) -> None:
    answer = reshape(ErrorResponse(status, "no", "whatever_openai_says"))
    assert answer.status_code == status
    assert json.loads(bytes(answer.body)) == {
        "type": "error",
        "error": {"type": kind, "message": "no"},
    }


def test_the_gateways_code_numbers_and_headers_are_kept() -> None:
    refused = ErrorResponse(
        429,
        "not enough tokens left",
        "insufficient_quota",
        code="insufficient_quota",
        extra={"tokens_left": 100},
        headers={"Retry-After": "5"},
    )
    answer = reshape(refused)
    assert json.loads(bytes(answer.body))["error"] == {
        "type": "rate_limit_error",
        "message": "not enough tokens left",
        "code": "insufficient_quota",
        "tokens_left": 100,
    }
    assert answer.headers["retry-after"] == "5"
    assert int(answer.headers["content-length"]) == len(answer.body)
