import pytest
from sqlalchemy import func, select

from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.services.context import Context
from quartermaster.services.identity.accounts import TERMS_VERSION, Registration, register
from quartermaster.store.models import AuditEvent, User

PASSWORD = "violet-anchor-sparrow-9"


async def _count_users(ctx: Context) -> int:
    async with ctx.uow.begin(write=False) as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(User)) or 0)


async def test_registration_records_terms_and_hashes_the_password(ctx: Context) -> None:
    user_id = await register(ctx, Registration("Ann@Example.com", PASSWORD, "Ann", True))
    async with ctx.uow.begin(write=False) as tx:
        user = await tx.session.get(User, user_id)
        events = list(await tx.session.scalars(select(AuditEvent.action)))
    assert user is not None
    assert user.email_normalized == "ann@example.com"
    assert user.terms_version == TERMS_VERSION
    assert user.terms_accepted_at == ctx.clock.now()
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert "user.register" in events


async def test_same_email_in_another_case_is_refused(ctx: Context) -> None:
    await register(ctx, Registration("ann@example.com", PASSWORD, "", True))
    with pytest.raises(Conflict, match="already registered"):
        await register(ctx, Registration("ANN@example.COM", PASSWORD, "", True))
    assert await _count_users(ctx) == 1


async def test_terms_must_be_accepted_and_nothing_is_written(ctx: Context) -> None:
    with pytest.raises(InvalidInput) as caught:
        await register(ctx, Registration("bo@example.com", PASSWORD, "", accept_terms=False))
    assert caught.value.param == "accept_terms"
    assert await _count_users(ctx) == 0
