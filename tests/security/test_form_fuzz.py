"""The dashboard's forms fuzzed the way test_fuzz.py fuzzes the API: every POST page route,
walked from the app's own route table (they are not in the OpenAPI schema), on SQLite and
PostgreSQL, each in a fresh world (`world.py`), sent as the person who may use it (an operator
for /operator, an org admin with MFA for /org, a member elsewhere) with their session and CSRF
token. Every field is drawn from text a person would not type (a NUL, a lone surrogate as the
replacement character a form's UTF-8 carries, right-to-left marks, 4-byte characters, 20,000
characters, numbers no column holds) and from arbitrary text.

Checks: no answer is a 5xx, and `qm ledger check` finds nothing wrong afterwards.

Alone: `.venv/bin/pytest -q tests/security/test_form_fuzz.py` (QM_FUZZ_EXAMPLES=50 to dig deeper).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.security.cases import schema_app
from tests.security.test_fuzz import HOSTILE_NUMBERS, HOSTILE_TEXT, Live, live, utf8_carried
from tests.security.world import Person, fill, path_values

__all__ = ["live"]
EXAMPLES = int(os.environ.get("QM_FUZZ_EXAMPLES", "8"))
VALUES = st.one_of(
    st.sampled_from(
        [utf8_carried(text) for text in HOSTILE_TEXT]
        + [str(number) for number in HOSTILE_NUMBERS]
        + ["", "-1", "0", "1,000", "yes", "on", "admin", "inference", "monthly"]
    ),
    st.text(max_size=40).map(utf8_carried),
)


def _routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the app, the included routers' too."""
    routes: list[APIRoute] = []
    for route in app.routes:
        included = getattr(route, "original_router", None)
        routes.extend(included.routes if included is not None else [route])
    return [route for route in routes if isinstance(route, APIRoute)]


def _form_routes() -> list[tuple[str, list[str]]]:
    """Each POST page (not /api, not /v1) with the names of its form fields."""
    found = [
        (route.path, [field.alias for field in route.dependant.body_params])
        for route in _routes(schema_app())
        if "POST" in route.methods and not route.path.startswith(("/api/", "/v1/"))
    ]
    assert len(found) > 25, "the route table lists the dashboard's forms"
    return sorted(found)


FORMS = _form_routes()


def _person(live: Live, path: str) -> Person:
    world = live.world
    if path.startswith("/operator"):
        return world.operator
    if path.startswith("/org"):
        return world.mine.admin
    return world.mine.member


def _url(live: Live, path: str) -> str:
    values = path_values(live.world.mine) | {"action": "reset-mfa", "kind": "subscriptions"}
    return fill(path, values)


@pytest.mark.parametrize(("path", "fields"), FORMS, ids=[path for path, _ in FORMS])
def test_no_form_answers_with_a_server_error(live: Live, path: str, fields: list[str]) -> None:
    person = _person(live, path)
    url = _url(live, path)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(form=st.fixed_dictionaries(dict.fromkeys(fields, VALUES)))
    def fuzz(form: dict[str, Any]) -> None:
        response = live.runner.run(person.browser.post(url, data=form))
        assert response.status_code < 500, (path, form, response.text[:300])

    fuzz()
