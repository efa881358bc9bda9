"""Fuzzing every /api and /v1 operation of the generated OpenAPI schema with schemathesis.

Each operation gets a fresh SQLite database holding an operator and two organizations (see
`world.py`), and the fake upstream behind the catalog's models. Schemathesis generates requests
that fit the schema and requests that break it; each is sent in-process as a member, an org
admin and an operator (API keys; the admin's and operator's were created from MFA-verified
sessions), once as generated and once with the path's ids pointing at real objects of the
caller's organization, so bodies reach the services and not only the "not found" branch.

Checks: no response is a 5xx, and a response whose status the route declares matches the
declared schema. Examples are derandomized (the same ones every run) and bounded per operation.
Nothing is excluded: a request that revokes the caller's key or signs them out only makes the
following requests of that operation answer 401, which is checked like any other answer.

Alone: `.venv/bin/pytest -q tests/security/test_fuzz.py` (QM_FUZZ_EXAMPLES=50 to dig deeper).
"""

from __future__ import annotations

import asyncio
import os
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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from quartermaster.app import create_app
from quartermaster.settings import Settings
from tests.conftest import TEST_SECRET
from tests.databases import SqliteTemplate
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


@pytest.fixture(scope="module")
def fuzz_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture
def live(fuzz_template: SqliteTemplate, tmp_path: Path) -> Iterator[Live]:
    url, _ = fuzz_template.fresh()
    clock = FixedClock()
    settings = Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path)
    app = create_app(settings, clock=clock, providers=fake_providers(FakeUpstream()))
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        runner.run(stack.enter_async_context(app.router.lifespan_context(app)))
        world = runner.run(build_world(app.state.ctx, app, clock))
        yield Live(runner, app, world)
        runner.run(world.close())
        runner.run(stack.aclose())


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
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        real_url = BASE_URL + fill(path, live.real_ids())
        for headers in live.callers().values():
            kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
            for url in (kwargs["url"], real_url):
                response = live.send(kwargs, url)
                case.validate_response(response, checks=CHECKS)

    fuzz()
