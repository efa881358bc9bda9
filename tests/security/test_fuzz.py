"""Fuzzing every /api and /v1 operation of the generated OpenAPI schema with schemathesis.

Each operation gets a fresh database, SQLite and PostgreSQL in turn, holding an operator and two
organizations (see `world.py`), and the fake upstream behind the catalog's models. Schemathesis
generates requests that fit the schema and requests that break it; each is sent in-process as a
member, an org admin and an operator (API keys; the admin's and operator's were created from
MFA-verified sessions), once as generated and once with the path's ids pointing at real objects of
the caller's organization, so bodies reach the services and not only the "not found" branch.

Each generated case is also sent hostile: every string in its body and query replaced by text
a person would not type (a NUL, a lone surrogate, a right-to-left override, 4-byte characters,
20,000 characters) and every integer by one no column holds.

Checks: no response is a 5xx, a response whose status the route declares matches the declared
schema (invalid input is declared as the 400 it is: http/openapi.py), and `qm ledger check`
finds nothing wrong once an operation has been fuzzed. Examples are derandomized (the same
ones every run) and bounded per operation.
Nothing is excluded: a request that revokes the caller's key or signs them out only makes the
following requests of that operation answer 401, which is checked like any other answer.

Alone: `.venv/bin/pytest -q tests/security/test_fuzz.py` (QM_FUZZ_EXAMPLES=50 to dig deeper).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from quartermaster.app import create_app
from quartermaster.services.ledger.check import check as check_ledger
from quartermaster.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.gateway_fixtures import fake_providers
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.security.cases import BASE_URL, SCHEMA, as_httpx, schema_app
from tests.security.world import World, api_operations, build_world, fill, path_values

EXAMPLES = int(os.environ.get("QM_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, response_schema_conformance]


OPERATIONS = api_operations(schema_app())


@dataclass
class Live:
    """An app with its world, driven from synchronous code through one event loop."""

    runner: asyncio.Runner
    app: FastAPI
    world: World

    def callers(self) -> dict[str, dict[str, str]]:
        world = self.world
        return {
            "member": world.mine.member.bearer(),
            "admin": world.mine.admin.bearer(),
            "operator": world.operator.bearer(),
        }

    def real_ids(self) -> dict[str, str]:
        """The caller's own organization's objects; `user_id` is a member who is not fuzzing."""
        values = path_values(self.world.mine)
        values["user_id"] = str(self.world.mine.other_member.user_id)
        return values

    def send(self, kwargs: dict[str, Any], url: str) -> httpx.Response:
        return self.runner.run(self._send(kwargs, url))

    async def _send(self, kwargs: dict[str, Any], url: str) -> httpx.Response:
        # A 500 comes back as the response the server would send, not as the exception.
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.send(as_httpx(http, kwargs, url))
            await response.aread()
            return response


HOSTILE_TEXT = ["\x00", "a\ud800b", "\u202eevil\u200f", "\U0001d518\U0001f642" * 3, "x" * 20_000]
SURROGATE = re.compile("[\ud800-\udfff]")
HOSTILE_NUMBERS = [2**63, -(2**63) - 1, 10**30]


def _hostile(value: Any, text: str, number: int) -> Any:
    """`value` with every string replaced by `text` and every integer by `number`."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return text
    if isinstance(value, int):
        return number
    if isinstance(value, dict):
        return {key: _hostile(item, text, number) for key, item in value.items()}
    if isinstance(value, list):
        return [_hostile(item, text, number) for item in value]
    return value


def utf8_carried(text: str) -> str:
    """`text` as a URL or a form, which carry UTF-8 bytes only, brings it to the server: a lone
    surrogate arrives as the replacement character."""
    return SURROGATE.sub("\ufffd", text)


def _made_hostile(kwargs: dict[str, Any], text: str, number: int) -> dict[str, Any]:
    """The request with hostile values. A URL carries only UTF-8 bytes, so a lone surrogate
    reaches a query string as the replacement character the server decodes it to, and a long
    one is cut to what a URL may hold."""
    in_url = utf8_carried(text)[:2000]
    hostile = dict(kwargs)
    for part, value in (("json", text), ("data", text), ("params", in_url)):
        if isinstance(kwargs.get(part), dict | list):
            hostile[part] = _hostile(kwargs[part], value, number)
    return hostile


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Live]:
    clock = FixedClock()
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, data_dir=tmp_path)
    app = create_app(settings, clock=clock, providers=fake_providers(FakeUpstream()))
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        runner.run(stack.enter_async_context(app.router.lifespan_context(app)))
        world = runner.run(build_world(app.state.ctx, app, clock))
        yield Live(runner, app, world)
        runner.run(world.close())
        differences = runner.run(check_ledger(app.state.ctx))
        runner.run(stack.aclose())
        assert differences == [], "the ledger check failed after fuzzing"


def _label(operation: tuple[str, str]) -> str:
    return f"{operation[0]} {operation[1]}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=_label)
def test_no_server_errors_and_responses_match_the_schema(
    live: Live, operation: tuple[str, str]
) -> None:
    method, path = operation
    api = SCHEMA[path][method]
    cases = api.as_strategy(schemathesis.GenerationMode.POSITIVE) | api.as_strategy(
        schemathesis.GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=cases,
        text=st.sampled_from(HOSTILE_TEXT),
        number=st.sampled_from(HOSTILE_NUMBERS),
    )
    def fuzz(case: schemathesis.Case, text: str, number: int) -> None:
        real_url = BASE_URL + fill(path, live.real_ids())
        for headers in live.callers().values():
            kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
            for url in (kwargs["url"], real_url):
                response = live.send(kwargs, url)
                case.validate_response(response, checks=CHECKS)
            hostile = live.send(_made_hostile(kwargs, text, number), real_url)
            case.validate_response(hostile, checks=CHECKS)

    fuzz()
