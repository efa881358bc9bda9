"""Registering people. Emails are unique case-insensitively; passwords are stored as argon2id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.emails import normalize_email
from quartermaster.domain.errors import Conflict, InvalidInput, NotFound
from quartermaster.domain.passwords import check_password
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity.passwords import hash_password
from quartermaster.store.models import User

TERMS_VERSION = "2026-11"


@dataclass(frozen=True)
class Registration:
    email: str
    password: str
    name: str = ""
    accept_terms: bool = False
    is_operator: bool = False


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email_normalized == normalize_email(email)))


async def user_id_for(ctx: Context, principal: Principal, email: str) -> int:
    """Operators: the id of the account registered for `email` (for resets named by email)."""
    require_operator(principal)
    async with ctx.uow.begin(write=False) as tx:
        user = await find_user_by_email(tx.session, email)
    if user is None:
        raise NotFound(f"no account is registered for {email}", param="email")
    return user.id


async def register(ctx: Context, form: Registration) -> int:
    """Create an account; refused, with nothing written, on a bad email, weak password,
    terms not accepted, or an address already registered in any letter case."""
    normalized = normalize_email(form.email)
    check_password(form.password, normalized)
    if not form.accept_terms:
        raise InvalidInput("you must accept the terms of use to register", param="accept_terms")
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        if await find_user_by_email(tx.session, normalized) is not None:
            raise Conflict(f"{form.email.strip()} is already registered", param="email")
        user = User(
            email=form.email.strip(),
            email_normalized=normalized,
            name=form.name.strip(),
            password_hash=hash_password(form.password),
            is_operator=form.is_operator,
            terms_version=TERMS_VERSION,
            terms_accepted_at=now,
            failed_logins=0,
            created_at=now,
        )
        tx.session.add(user)
        await tx.session.flush()
        await audit.record(
            tx.session,
            audit.AuditEntry(
                action="user.register",
                actor_user_id=user.id,
                target_type="user",
                target_id=user.id,
                after={"email": user.email, "terms_version": TERMS_VERSION},
            ),
            now,
        )
        await tx.commit()
        return user.id
