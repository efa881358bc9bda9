"""Requests built from the app's own OpenAPI schema by schemathesis: the fuzzer's generated
ones, and for the route-table walkers one request each operation accepts (so a refusal comes
from the authorization check, not from a body that failed validation)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, find, settings

from quartermaster.app import create_app
from quartermaster.http.text_guard import first_unsafe
from quartermaster.settings import Settings
from tests.conftest import TEST_SECRET

BASE_URL = "https://qm.test"


@cache
def schema_app() -> FastAPI:
    """An app built only to read its OpenAPI schema (it never opens its database)."""
    settings = Settings(
        database_url="sqlite+aiosqlite://", secret_key=TEST_SECRET, data_dir=Path("unused")
    )
    return create_app(settings)


def _binary_as_format(node: Any) -> Any:
    """FastAPI marks uploads the OpenAPI 3.1 way (`contentMediaType`), which schemathesis
    fills with text; `format: binary` (the 3.0 way) makes it send real file parts."""
    if isinstance(node, dict):
        if node.get("contentMediaType") == "application/octet-stream":
            return {"type": "string", "format": "binary"}
        return {key: _binary_as_format(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_binary_as_format(value) for value in node]
    return node


SCHEMA = schemathesis.openapi.from_dict(_binary_as_format(schema_app().openapi()))


def as_httpx(
    http: httpx.AsyncClient, kwargs: dict[str, Any], url: str | None = None
) -> httpx.Request:
    """Schemathesis serializes a case for `requests`; encode it the same way (multipart
    included) and carry the bytes over to `http` (which adds its cookies), which drives the
    app in-process."""
    prepared = requests.Request(
        kwargs["method"],
        url or kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return http.build_request(
        str(prepared.method), str(prepared.url), headers=dict(prepared.headers), content=body
    )


def _accepted(case: Any) -> bool:
    """What the edge accepts: an upload with no file is refused by validation, and text with a
    NUL or a lone surrogate by http/text_guard.py, both before any authorization check."""
    body = case.body
    if isinstance(body, dict) and any(value == [] for value in body.values()):
        return False
    parts = (body, case.query, case.path_parameters)
    return all(first_unsafe(part) is None for part in parts)


@cache
def _valid_kwargs(method: str, path: str) -> dict[str, Any]:
    case = find(
        SCHEMA[path][method].as_strategy(),
        _accepted,
        settings=settings(
            database=None,
            derandomize=True,
            phases=[Phase.generate],  # the first fit: shrinking every operation takes minutes
            suppress_health_check=list(HealthCheck),
        ),
    )
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=BASE_URL)
    return kwargs


def valid_request(
    http: httpx.AsyncClient, method: str, path: str, url: str, headers: dict[str, str]
) -> httpx.Request:
    """A request the operation at `path` accepts (the same one every run), sent to `url` with
    `headers`."""
    kwargs = _valid_kwargs(method, path)
    request = as_httpx(http, kwargs, BASE_URL + url)
    request.headers.update(headers)
    return request
