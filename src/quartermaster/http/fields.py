"""Request fields every JSON adapter shares, bounded as the services bound them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import Field

from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT
from quartermaster.services.identity.logins import MAX_LOGINS

Tokens = Annotated[int, Field(ge=0, le=MAX_TOKEN_AMOUNT)]
"""A token amount a person typed: an allocation, a purchase, a rule's limit."""
PositiveTokens = Annotated[int, Field(gt=0, le=MAX_TOKEN_AMOUNT)]
"""A token amount that must ask for something: a member's request."""
LoginsLimit = Annotated[int, Query(ge=1, le=MAX_LOGINS, description="Entries, newest first.")]
"""How many sign-in attempts a page of the login history shows."""
