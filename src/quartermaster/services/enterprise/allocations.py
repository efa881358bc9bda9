"""Setting a member's monthly caps: both kinds in one request, compare-and-set on `version`.

An edit names the version it was based on; if a save came first (another admin's, or the same
admin's in another tab), the edit is refused with 409 `stale_version` and the current values, so
nobody's change is silently lost. The caps are checked against the per-member minimum and
against the org's pool (raising past the balance left is refused; lowering is always allowed).

Errors: NotFound (org or member), InvalidInput (below_minimum, pool_exhausted, over_assigned),
Conflict (stale_version).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.allocation import check_caps, check_fits
from quartermaster.domain.errors import Conflict
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise.membership import active_member
from quartermaster.services.enterprise.org_pool import OrgMonth, admin_change
from quartermaster.store.models import Allocation, Membership
from quartermaster.store.upsert import rows_changed


@dataclass(frozen=True)
class CapsEdit:
    max_inference_tokens: int
    max_training_tokens: int
    version: int
    """The version the edit was based on (from the member list or the last save)."""


def caps_view(allocation: Allocation) -> dict[str, int]:
    return {
        "max_inference_tokens": allocation.max_inference_tokens,
        "max_training_tokens": allocation.max_training_tokens,
        "version": allocation.version,
    }


def stale(current: dict[str, int]) -> Conflict:
    return Conflict(
        "this member's allocation was changed since you loaded it (perhaps in another tab); "
        f"it is now {current['max_inference_tokens']:,} inference and "
        f"{current['max_training_tokens']:,} training tokens (version {current['version']}): "
        "reload and apply your change again",
        code="stale_version",
        details={"current": current},
    )


async def allocation_of(session: AsyncSession, membership_id: int) -> Allocation:
    found = await session.scalar(
        select(Allocation)
        .where(Allocation.membership_id == membership_id)
        .execution_options(populate_existing=True)
    )
    assert found is not None, "every membership has an allocation row"
    return found


async def write_caps(
    session: AsyncSession,
    allocation: Allocation,
    caps: tuple[int, int],
    version: int,
    now: datetime,
) -> None:
    """Compare-and-set: the update lands only if the row still has `version`."""
    result = await session.execute(
        update(Allocation)
        .where(Allocation.membership_id == allocation.membership_id, Allocation.version == version)
        .values(
            max_inference_tokens=caps[0],
            max_training_tokens=caps[1],
            version=version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise stale(caps_view(await allocation_of(session, allocation.membership_id)))


async def set_allocation(
    ctx: Context, principal: Principal, org_id: int, user_id: int, edit: CapsEdit
) -> dict[str, int]:
    """Save both caps atomically, or neither; returns the saved values and the new version."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, month):
        session = tx.session
        member = await active_member(session, org_id, user_id)
        check_caps(
            edit.max_inference_tokens, edit.max_training_tokens, month.org.min_inference_allocation
        )
        allocation = await allocation_of(session, member.id)
        before = caps_view(allocation)
        if allocation.version != edit.version:
            raise stale(before)
        after = (edit.max_inference_tokens, edit.max_training_tokens)
        check_fits(month.inference, allocation.max_inference_tokens, after[0], month.period)
        check_fits(month.training, allocation.max_training_tokens, after[1], month.period)
        await write_caps(session, allocation, after, edit.version, now)
        saved = {"max_inference_tokens": after[0], "max_training_tokens": after[1]}
        saved["version"] = edit.version + 1
        await _audit(session, principal, member, "allocation.set", before, saved, now)
        await tx.commit()
    return saved


async def raise_cap(
    session: AsyncSession,
    month: OrgMonth,
    member: Membership,
    grant: tuple[TokenKind, int],
    now: datetime,
) -> tuple[int, int]:
    """Add tokens to one of the member's caps within the pool (the org is already locked);
    returns the cap before and after."""
    kind, amount = grant
    allocation = await allocation_of(session, member.id)
    caps = [allocation.max_inference_tokens, allocation.max_training_tokens]
    index = 0 if kind is TokenKind.INFERENCE else 1
    before = caps[index]
    caps[index] += amount
    check_fits(month.balance(kind), before, caps[index], month.period)
    await write_caps(session, allocation, (caps[0], caps[1]), allocation.version, now)
    return before, caps[index]


async def _audit(
    session: AsyncSession,
    principal: Principal,
    member: Membership,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    entry = audit.AuditEntry(
        action=action,
        actor_user_id=principal.user_id,
        org_id=member.org_id,
        target_type="user",
        target_id=member.user_id,
        before=before,
        after=after,
    )
    await audit.record(session, entry, now)
