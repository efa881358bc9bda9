"""Request fields every JSON adapter shares, bounded as the services bound them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT

Tokens = Annotated[int, Field(ge=0, le=MAX_TOKEN_AMOUNT)]
"""A token amount a person typed: an allocation, a purchase, a rule's limit."""
PositiveTokens = Annotated[int, Field(gt=0, le=MAX_TOKEN_AMOUNT)]
"""A token amount that must ask for something: a member's request."""
