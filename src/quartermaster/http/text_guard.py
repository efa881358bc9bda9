"""One rule at the edge for every piece of text a request carries: no NUL character and no
unpaired UTF-16 surrogate, in a JSON body (keys and values, at any depth), a form field or an
uploaded file's name, the query string, the path, or a header.

Neither can be stored (PostgreSQL's text refuses NUL; a lone surrogate is not UTF-8 at all) nor
counted by a tokenizer, and neither is ever part of a real name, prompt or reason, so a request
holding one is refused whole with 400 `invalid_value` naming the field, before any route's work
starts: nothing is read, held or written for it. Each route still validates its own fields.

A JSON body can only hold either as an escape (`\\u0000`, `\\ud800`: the raw bytes would not be
JSON), so a body is decoded a second time only when such an escape is in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from quartermaster.domain.errors import InvalidInput

_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def unsafe(text: str) -> bool:
    """Whether `text` holds a NUL or a surrogate (a decoded str holds them only unpaired)."""
    return _UNSAFE.search(text) is not None


def refusal(field: str) -> InvalidInput:
    return InvalidInput(
        f"{field} contains a NUL character or an unpaired UTF-16 surrogate, which no text field "
        "accepts; remove it and send the request again",
        param=field,
        code="invalid_value",
    )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a decoded JSON value, keys included, with the path that names it."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, key
            yield from _strings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}" if path else str(index))


def first_unsafe(value: Any) -> str | None:
    """The path of the first unsafe string in a decoded JSON value (`body` for the value
    itself), or None when every string in it is safe."""
    return next((path or "body" for path, text in _strings(value, "") if unsafe(text)), None)


def _check_json(body: bytes) -> None:
    if _SUSPECT_ESCAPE.search(body) is None:
        return
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # the route's own parser names what is wrong with it
    found = first_unsafe(decoded)
    if found is not None:
        raise refusal(found)


async def _check_form(request: Request) -> None:
    form = await request.form()
    for name, value in form.multi_items():
        if unsafe(name):
            raise refusal("form field name")
        if isinstance(value, UploadFile):
            if value.filename is not None and unsafe(value.filename):
                raise refusal(f"{name} (file name)")
        elif unsafe(value):
            raise refusal(name)


async def refuse_unsafe_text(request: Request) -> None:
    """A dependency every route has (installed in app.py): refuse the request when any text
    in it is unsafe. Runs before the route, after FastAPI has read the body."""
    for name, value in request.query_params.multi_items():
        if unsafe(name):
            raise refusal("query parameter name")
        if unsafe(value):
            raise refusal(name)
    for name, value in request.path_params.items():
        if isinstance(value, str) and unsafe(value):
            raise refusal(name)
    for name, value in request.headers.items():
        if unsafe(value):
            raise refusal(f"header {name}")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(FORM_TYPES):
        await _check_form(request)
    elif request.method in ("POST", "PUT", "PATCH"):
        _check_json(await request.body())
