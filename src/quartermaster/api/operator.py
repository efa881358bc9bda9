"""Operator work under /api/operator: provisioning enterprise accounts and recording purchases.

Operators only, with MFA verified; checked by a router-level dependency before the body is read,
and again in each service.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from quartermaster.domain.enterprise import (
    ADDITIONAL_INFORMATION_MAX_CHARS,
    BILLING_ADDRESS_MAX_CHARS,
    DEFAULT_MIN_INFERENCE_ALLOCATION,
    Provisioning,
)
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.types import PurchaseKind, Term
from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.fields import Tokens
from quartermaster.services.enterprise import provisioning, purchases


def operator_only(caller: Caller) -> Principal:
    require_operator(caller)
    return caller


router = APIRouter(prefix="/api/operator", tags=["operator"], dependencies=[Depends(operator_only)])
Emails = Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=10_000)]


class ProvisionBody(BaseModel):
    name: str = Field(max_length=200)
    billing_address: str = Field(
        max_length=BILLING_ADDRESS_MAX_CHARS, description="Required: where the invoices go."
    )
    additional_information: str = Field(
        default="",
        max_length=ADDITIONAL_INFORMATION_MAX_CHARS,
        description="Anything else the customer told sales.",
    )
    member_emails: Emails
    admin_emails: Emails
    inference_tokens: Tokens
    training_tokens: Tokens = 0
    term: Term = Term.YEARLY
    timezone: str = Field(default="UTC", max_length=64)
    min_inference_allocation: Tokens = DEFAULT_MIN_INFERENCE_ALLOCATION


class OrderBody(BaseModel):
    inference_tokens: Tokens = 0
    training_tokens: Tokens = 0
    price: Decimal | None = Field(default=None, description="Overrides the list price.")
    currency: str | None = Field(default=None, max_length=3)
    reference: str | None = Field(default=None, max_length=100)


class SubscriptionBody(OrderBody):
    term: Term = Term.YEARLY
    terms: int = Field(default=1, ge=1, le=purchases.MAX_TERMS)
    start_period: str | None = Field(default=None, description="YYYY-MM; default this month.")


@router.post("/orgs", status_code=201)
async def provision(body: ProvisionBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Create an enterprise account; a refusal names every problem (`error.problems`)."""
    request = Provisioning(**body.model_dump())
    return await provisioning.provision(ctx, caller, request)


@router.get("/orgs")
async def list_orgs(ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    return await provisioning.list_orgs(ctx, caller)


@router.post("/orgs/{org_id}/subscriptions", status_code=201)
async def subscribe(
    org_id: int, body: SubscriptionBody, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    """A subscription line: its monthly amounts count for every month of its terms."""
    order = purchases.Order(**body.model_dump())
    return await purchases.buy(ctx, caller, org_id, PurchaseKind.SUBSCRIPTION, order)


@router.post("/orgs/{org_id}/topups", status_code=201)
async def top_up(org_id: int, body: OrderBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """A top-up: its tokens count for the current month only."""
    order = purchases.Order(**body.model_dump())
    return await purchases.buy(ctx, caller, org_id, PurchaseKind.TOPUP, order)
