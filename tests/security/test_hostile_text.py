"""Text no field may hold — a NUL character, an unpaired UTF-16 surrogate — is refused at the
edge with 400 `invalid_value` naming the field, on both databases, wherever it arrives: a JSON
body (at any depth, a chat message included, plain or streamed), a form field, an uploaded
file's name, a query string. Nothing is written for it (no account, no charge); a page size
below one is a 400 too, not a silent default."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from quartermaster.domain.emails import normalize_email
from quartermaster.domain.errors import InvalidInput
from quartermaster.services.context import Context
from quartermaster.store.models import User
from tests.e2e.api_client import new_client, sign_in
from tests.e2e.gateway_fixtures import fake, gateway, key_for
from tests.factories import add_user
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HOSTILE = ["x\u0000y", "x\ud800y", "\udfff"]


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (field, "invalid_value")
    assert "NUL character or an unpaired UTF-16 surrogate" in error["message"]


def _raw_json(body: object) -> bytes:
    """JSON as a client that escapes everything sends it (lone surrogates included)."""
    return json.dumps(body, ensure_ascii=True).encode()


B = "qm-boundary"


def _multipart(filename: str, data: bytes) -> bytes:
    """One file part whose name holds the raw characters (httpx would percent-encode them)."""
    head = (
        f'--{B}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    )
    return head.encode() + data + f"\r\n--{B}--\r\n".encode()


async def _users(ctx: Context) -> int:
    async with ctx.uow.begin(write=False) as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(User)) or 0)


@pytest.mark.parametrize("text", HOSTILE)
async def test_sign_in_and_sign_up_refuse_it_and_create_nothing(
    app: FastAPI, ctx: Context, text: str
) -> None:
    before = await _users(ctx)
    async with new_client(app) as http:
        for path, body in (
            ("/api/auth/login", {"email": f"{text}@bad.example", "password": "whatever-pass"}),
            (
                "/api/auth/register",
                {
                    "email": "new@example.com",
                    "password": "long enough passphrase 1",
                    "name": text,
                    "accept_terms": True,
                },
            ),
        ):
            sent = await http.post(
                path, content=_raw_json(body), headers={"content-type": "application/json"}
            )
            _refused(sent, "email" if "login" in path else "name")
    assert await _users(ctx) == before


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("text", HOSTILE)
async def test_a_chat_holding_it_is_refused_before_any_hold(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, text: str, stream: bool
) -> None:
    member = await add_member(ctx, inference_cap=100_000)
    key = await key_for(ctx, member.user_id)
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": text}]},
    ]
    body = {"model": CHAT, "messages": messages, "stream": stream}
    async with new_client(gateway) as http:
        sent = await http.post(
            "/v1/chat/completions",
            content=_raw_json(body),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
    _refused(sent, "messages.1.content.0.text")
    assert fake.requests == []
    assert await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_a_form_field_an_upload_name_and_a_query_string_are_checked_too(
    app: FastAPI, ctx: Context
) -> None:
    await add_user(ctx, "member@example.com")
    async with new_client(app) as http:
        browser = await sign_in(http, "member@example.com")
        form = await http.post(
            "/register",
            data={"email": "x@example.com", "password": "p\x00assword-long-enough"},
        )
        assert form.status_code == 400  # a page: the person sees the message, naming the field
        assert "Password contains a NUL character or an unpaired UTF-16 surrogate" in form.text
        upload = await http.post(
            "/api/datasets/1/documents",
            content=_multipart("notes\x00.txt", b"hello"),
            headers={**browser.headers(), "content-type": f"multipart/form-data; boundary={B}"},
        )
        _refused(upload, "files (file name)")
        query = await http.get("/api/me/logins", params={"note": "a\x00b"})
        _refused(query, "note")


@pytest.mark.parametrize("limit", [-1, 0, 501])
async def test_a_page_size_out_of_range_is_a_400(app: FastAPI, ctx: Context, limit: int) -> None:
    await add_user(ctx, "member@example.com")
    async with new_client(app) as http:
        await sign_in(http, "member@example.com")
        response = await http.get("/api/me/logins", params={"limit": limit})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("email", ["a\x00b@example.com", "a\x01b@example.com", "a\x7fb@ex.com"])
def test_an_email_with_a_control_character_is_not_an_email(email: str) -> None:
    with pytest.raises(InvalidInput, match="is not an email address"):
        normalize_email(email)
