"""Taking payment for individual plans and refills, behind one small protocol.

Quartermaster ships two ways: `manual` (the default), where operators record payments they
received (`qm plan record-payment`) and self-service purchases are refused with instructions;
and `offline`, which approves every charge at once and is meant for demos and tests. A real
card processor implements the same protocol.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from quartermaster.domain.errors import PaymentRequired


@dataclass(frozen=True)
class Charge:
    user_id: int
    amount: Decimal
    currency: str
    description: str


class PaymentProvider(Protocol):
    name: str

    async def charge(self, charge: Charge) -> str:
        """Take the money and return the provider's reference, or raise PaymentRequired."""
        ...


class ManualPayments:
    """No way to take money online: the operator records payments by hand."""

    name = "manual"

    async def charge(self, charge: Charge) -> str:
        raise PaymentRequired(
            f"online payment is not set up here; pay {charge.amount} {charge.currency} for "
            f"{charge.description} to your operator, who records it",
            code="payments_manual",
        )


class OfflinePayments:
    """Approves every charge at once (demo mode and tests); keeps what it charged."""

    name = "offline"

    def __init__(self) -> None:
        self.charges: list[Charge] = []

    async def charge(self, charge: Charge) -> str:
        assert charge.amount >= 0, "charges are never negative"
        self.charges.append(charge)
        return f"offline-{uuid.uuid4().hex}"


class RecordedPayment:
    """Money the operator already received: the charge is just the reference they give."""

    name = "manual"

    def __init__(self, reference: str) -> None:
        self.reference = reference.strip()[:100]

    async def charge(self, charge: Charge) -> str:
        if not self.reference:
            raise PaymentRequired("give the payment's reference (receipt or invoice number)")
        return self.reference


def provider_named(name: str) -> PaymentProvider:
    providers: dict[str, type[ManualPayments] | type[OfflinePayments]] = {
        "manual": ManualPayments,
        "offline": OfflinePayments,
    }
    assert name in providers, f"QM_PAYMENTS must be one of {sorted(providers)}"
    return providers[name]()
