"""The populated platform (`world.py`) as a fixture, on the test's app and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.fakes.clock import FixedClock
from tests.security.world import World, build_world


@pytest.fixture
async def world(app: FastAPI, ctx: Context, clock: FixedClock) -> AsyncIterator[World]:
    built = await build_world(ctx, app, clock)
    yield built
    await built.close()
