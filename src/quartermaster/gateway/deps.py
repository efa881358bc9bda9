"""What the metered /v1 routes share: who is calling (the process's providers are shared with
the other adapters: http/providers.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from quartermaster.domain.errors import NotAuthenticated
from quartermaster.http.deps import bearer_token, context, principal
from quartermaster.services.identity import known_keys
from quartermaster.services.metering import MeteredCaller


async def metered_caller(request: Request) -> MeteredCaller:
    """Chats and embeddings: an API key from memory when this process checked it a moment ago
    (the hold's statement checks it again: services/identity/known_keys.py); a session as
    everywhere."""
    token = bearer_token(request)
    if token is None:
        return await principal(request)
    return await known_keys.recall(context(request), token)


async def api_key_caller(request: Request) -> MeteredCaller:
    """Anthropic's clients: the API key as `x-api-key` (what ANTHROPIC_API_KEY sends) or as a
    bearer token (ANTHROPIC_AUTH_TOKEN); otherwise as for chats."""
    key, bearer = request.headers.get("x-api-key", "").strip(), bearer_token(request)
    if key and bearer and key != bearer:
        raise NotAuthenticated("x-api-key and Authorization carry different keys; send one")
    if key:
        return await known_keys.recall(context(request), key)
    return await metered_caller(request)


MeteredCallerDep = Annotated[MeteredCaller, Depends(metered_caller)]
ApiKeyCallerDep = Annotated[MeteredCaller, Depends(api_key_caller)]
