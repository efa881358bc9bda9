"""CAC / smart-card sign-in. A reverse proxy terminates mutual TLS and forwards the verified
certificate's subject DN; the adapter believes those headers only from trusted proxy addresses
and hands this module a `Certificate`. A user links a certificate once while signed in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from quartermaster.domain.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz, logins
from quartermaster.services.identity.sessions import ClientInfo
from quartermaster.services.identity.signin import SignInResult, after_first_factor
from quartermaster.store.models import User

MAX_DN_LENGTH = 1024


@dataclass(frozen=True)
class Certificate:
    """A client certificate the proxy verified against the configured CA."""

    subject_dn: str


def checked(subject_dn: str | None, verified: str | None) -> Certificate:
    """The certificate from proxy headers, refused unless the proxy reports SUCCESS."""
    if verified != "SUCCESS" or not subject_dn:
        raise NotAuthenticated(
            "no verified client certificate was presented; insert your card and retry",
            code="no_certificate",
        )
    dn = subject_dn.strip()
    if len(dn) > MAX_DN_LENGTH:
        raise InvalidInput("the certificate subject is too long", code="bad_certificate")
    return Certificate(dn)


async def link(ctx: Context, principal: Principal, certificate: Certificate) -> None:
    """Link the presented certificate to the signed-in user (one certificate per user)."""
    async with ctx.uow.begin() as tx:
        owner = await tx.session.scalar(
            select(User).where(User.cac_subject_dn == certificate.subject_dn)
        )
        if owner is not None and owner.id != principal.user_id:
            raise Conflict("this certificate is linked to another account")
        user = await tx.session.get(User, principal.uid)
        assert user is not None
        before = user.cac_subject_dn
        user.cac_subject_dn, user.cac_linked_at = certificate.subject_dn, ctx.clock.now()
        entry = audit.AuditEntry(
            "cac.link",
            user.id,
            await authz.org_of(tx.session, user.id),
            target_type="user",
            target_id=user.id,
            before={"cac": before},
            after={"cac": certificate.subject_dn},
        )
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()


async def sign_in(ctx: Context, certificate: Certificate, client: ClientInfo) -> SignInResult:
    """Sign in with a linked certificate; TOTP still follows when the user enrolled it."""
    async with ctx.uow.begin() as tx:
        user = await tx.session.scalar(
            select(User).where(User.cac_subject_dn == certificate.subject_dn)
        )
        if user is None:
            attempt = logins.Attempt(
                certificate.subject_dn[:320], "cac", False, "unlinked_certificate"
            )
            logins.record(tx.session, attempt, client, ctx.clock.now())
            await tx.commit()
        else:
            result = await after_first_factor(ctx, tx.session, user, "cac", client)
            await tx.commit()
            return result
    raise NotAuthenticated(
        "this certificate is not linked to an account: sign in with your password once and "
        "link it under Settings → Security",
        code="certificate_not_linked",
    )


async def unlink(ctx: Context, principal: Principal, user_id: int | None = None) -> None:
    """Remove the link: the user themself, or an operator for anyone (audited either way)."""
    target = principal.uid if user_id is None or user_id == principal.user_id else user_id
    if target != principal.user_id:
        require_operator(principal)
    async with ctx.uow.begin() as tx:
        user = await tx.session.get(User, target)
        if user is None:
            raise NotFound("no such user", param="user_id")
        before = user.cac_subject_dn
        user.cac_subject_dn = user.cac_linked_at = None
        entry = audit.AuditEntry(
            "cac.unlink",
            principal.user_id,
            await authz.org_of(tx.session, user.id),
            target_type="user",
            target_id=user.id,
            before={"cac": before},
            after={"cac": None},
        )
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()
