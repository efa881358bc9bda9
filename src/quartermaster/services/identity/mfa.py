"""TOTP multi-factor authentication: enrolment with a locally drawn QR code, ten single-use
recovery codes (kept as keyed hashes), verification, disabling with re-authentication, and the
operator's reset. A code is accepted once: the time step last used is remembered."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import Conflict, InvalidInput, NotFound
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz, passwords
from quartermaster.services.identity.sessions import end_all_for
from quartermaster.store.models import RecoveryCode, Session, User

ISSUER = "Quartermaster"
RECOVERY_CODES = 10
TOTP_STEP_S = 30


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def _recovery_hash(secret_key: str, code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return hmac.new(secret_key.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def _new_recovery_code() -> str:
    raw = secrets.token_hex(5)
    return f"{raw[:5]}-{raw[5:]}"


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", param="user_id")
    return user


async def start_enrolment(ctx: Context, principal: Principal) -> Enrolment:
    """A new secret, pending until a code from it is confirmed."""
    async with ctx.uow.begin() as tx:
        user = await _user(tx.session, principal.uid)
        if user.mfa_enabled_at is not None:
            raise Conflict("MFA is already on; disable it first to enrol a new device")
        user.mfa_secret = pyotp.random_base32()
        await tx.commit()
    uri = pyotp.TOTP(user.mfa_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    return Enrolment(user.mfa_secret, uri, svg)


def totp_step(user: User, code: str, now: datetime) -> int | None:
    """The time step `code` is valid for (±1 step), or None; never a step already used."""
    if user.mfa_secret is None or not code.strip().isdigit():
        return None
    totp = pyotp.TOTP(user.mfa_secret)
    current = int(now.timestamp()) // TOTP_STEP_S
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP_S), code.strip()):
            return step if (user.mfa_last_step or -1) < step else None
    return None


async def check_code(session: AsyncSession, user: User, code: str, ctx: Context) -> bool:
    """Accept a TOTP code or an unused recovery code, consuming it; inside the caller's tx."""
    step = totp_step(user, code, ctx.clock.now())
    if step is not None:
        user.mfa_last_step = step
        return True
    used = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(ctx.security.secret_key, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=ctx.clock.now())
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


async def confirm_enrolment(ctx: Context, principal: Principal, code: str) -> list[str]:
    """Turn MFA on with a first code; returns the recovery codes, shown this once only.

    The session that confirmed counts as MFA-verified from now on."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        user = await _user(tx.session, principal.uid)
        if user.mfa_enabled_at is not None:
            raise Conflict("MFA is already on")
        if user.mfa_secret is None:
            raise InvalidInput(
                "start enrolment first: Settings → Security → Set up two-factor authentication"
            )
        step = totp_step(user, code, now)
        if step is None:
            raise InvalidInput("that code is not valid; check the device's clock", param="code")
        user.mfa_enabled_at, user.mfa_last_step = now, step
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
        await tx.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        tx.session.add_all(
            RecoveryCode(user_id=user.id, code_hash=_recovery_hash(ctx.security.secret_key, c))
            for c in codes
        )
        if principal.session_key is not None:
            await tx.session.execute(
                update(Session)
                .where(Session.token_hash == principal.session_key)
                .values(mfa_verified=True)
            )
        org_id = await authz.org_of(tx.session, user.id)
        entry = audit.AuditEntry("mfa.enable", user.id, org_id, "user", user.id)
        await audit.record(tx.session, entry, now)
        await tx.commit()
    return codes


async def disable(ctx: Context, principal: Principal, password: str, code: str) -> None:
    """Turn MFA off; needs the password and a current code (or a recovery code)."""
    async with ctx.uow.begin() as tx:
        user = await _user(tx.session, principal.uid)
        if user.mfa_enabled_at is None:
            raise Conflict("MFA is not on")
        if not passwords.verify(user, password):
            raise InvalidInput("the password is wrong", param="password")
        if not await check_code(tx.session, user, code, ctx):
            raise InvalidInput("that code is not valid", param="code")
        await _clear(tx.session, user)
        org_id = await authz.org_of(tx.session, user.id)
        entry = audit.AuditEntry("mfa.disable", user.id, org_id, "user", user.id)
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()


async def _clear(session: AsyncSession, user: User) -> None:
    user.mfa_secret = user.mfa_enabled_at = user.mfa_last_step = None
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await session.execute(
        update(Session).where(Session.user_id == user.id).values(mfa_verified=False)
    )


async def operator_reset(ctx: Context, principal: Principal, user_id: int) -> None:
    """An operator clears a user's MFA (lost device); the user's sessions end."""
    require_operator(principal)
    async with ctx.uow.begin() as tx:
        user = await _user(tx.session, user_id)
        had = user.mfa_enabled_at is not None
        await _clear(tx.session, user)
        await end_all_for(tx.session, user.id)
        entry = audit.AuditEntry(
            "mfa.reset",
            principal.user_id,
            await authz.org_of(tx.session, user.id),
            target_type="user",
            target_id=user.id,
            before={"mfa": had},
            after={"mfa": False},
        )
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()


async def remaining_recovery_codes(session: AsyncSession, user_id: int) -> int:
    rows = await session.scalars(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    )
    return len(list(rows))
