"""What a signed-in user sees about themself: identity, security state, membership."""

from __future__ import annotations

from typing import Any

from quartermaster.domain.errors import NotFound
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import authz, mfa
from quartermaster.store.models import User


async def me(ctx: Context, principal: Principal) -> dict[str, Any]:
    async with ctx.uow.begin(write=False) as tx:
        user = await tx.session.get(User, principal.uid)
        if user is None:
            raise NotFound("your account no longer exists")
        membership = await authz.active_membership(tx.session, user.id)
        recovery_left = await mfa.remaining_recovery_codes(tx.session, user.id)
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "is_operator": user.is_operator,
        "terms_version": user.terms_version,
        "terms_accepted_at": user.terms_accepted_at,
        "mfa_enabled": user.mfa_enabled_at is not None,
        "mfa_verified_in_session": principal.mfa_verified,
        "recovery_codes_left": recovery_left,
        "cac_linked": user.cac_subject_dn is not None,
        "cac_subject_dn": user.cac_subject_dn,
        "org_id": membership.org_id if membership else None,
        "role": membership.role if membership else None,
        "paid": membership.paid if membership else None,
        "banned": membership.banned if membership else None,
        "authenticated_via": principal.via,
    }
