"""Provisioning an enterprise account: the reference's rules, checked all at once.

An operator sends everything in one go (name, billing address, member and admin emails, the
first purchase), so a refusal lists every problem together instead of one per attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

from quartermaster.domain.emails import normalize_email
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.pricing import token_problems
from quartermaster.domain.types import Term

MIN_MEMBERS = 2
BILLING_ADDRESS_MAX_CHARS = 2_000
ADDITIONAL_INFORMATION_MAX_CHARS = 4_000
DEFAULT_MIN_INFERENCE_ALLOCATION = 200_000


@dataclass(frozen=True)
class Person:
    """What provisioning needs to know about the account behind one (normalized) email."""

    email: str
    user_id: int
    terms_accepted: bool
    enterprise: str | None = None
    """The enterprise they already belong to, if any."""


@dataclass(frozen=True)
class Provisioning:
    """The reference's provisioning email: name, billing address, members and admins, the token
    request and any additional information."""

    name: str
    member_emails: Sequence[str]
    admin_emails: Sequence[str]
    inference_tokens: int
    training_tokens: int = 0
    term: Term = Term.YEARLY
    _: KW_ONLY
    billing_address: str
    additional_information: str = ""
    timezone: str = "UTC"
    min_inference_allocation: int = DEFAULT_MIN_INFERENCE_ALLOCATION


@dataclass(frozen=True)
class Roster:
    """The provisioning's people, normalized: every member once, and which of them are admins."""

    members: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def roster(request: Provisioning) -> Roster:
    result = Roster()
    pairs = ((request.member_emails, result.members), (request.admin_emails, result.admins))
    for emails, into in pairs:
        for email in emails:
            try:
                normalized = normalize_email(email)
            except InvalidInput:
                result.malformed.append(email)
                continue
            if normalized not in into:
                into.append(normalized)
    return result


def _listed(emails: Sequence[str]) -> str:
    return ", ".join(emails)


def people_problems(names: Roster, people: Mapping[str, Person]) -> list[str]:
    """Problems with who is in the account: count, registration, terms, admins, other orgs."""
    problems = []
    if names.malformed:
        problems.append(f"not email addresses: {_listed(names.malformed)}")
    if len(names.members) < MIN_MEMBERS:
        problems.append(
            f"an enterprise account needs at least {MIN_MEMBERS} members (got {len(names.members)})"
        )
    everyone = names.members + [email for email in names.admins if email not in names.members]
    unknown = [email for email in everyone if email not in people]
    if unknown:
        problems.append(f"not registered (they must register first): {_listed(unknown)}")
    no_terms = [e for e in names.members if e in people and not people[e].terms_accepted]
    if no_terms:
        problems.append(f"have not accepted the terms of use: {_listed(no_terms)}")
    if not names.admins:
        problems.append("no admin: name at least one member as admin")
    outsiders = [email for email in names.admins if email not in names.members]
    if outsiders:
        problems.append(f"admins must also be listed as members: {_listed(outsiders)}")
    taken = [f"{e} ({people[e].enterprise})" for e in names.members if _enterprise(people, e)]
    if taken:
        problems.append(f"already in another enterprise: {_listed(taken)}")
    return problems


def _enterprise(people: Mapping[str, Person], email: str) -> str | None:
    return people[email].enterprise if email in people else None


def pool_problems(request: Provisioning, member_count: int) -> list[str]:
    """Problems with the first purchase: whole bundles, and enough for each member's minimum."""
    problems = token_problems(
        request.inference_tokens, request.training_tokens, need_inference=True
    )
    needed = member_count * request.min_inference_allocation
    if member_count and request.inference_tokens < needed:
        problems.append(
            f"{request.inference_tokens:,} inference tokens cannot give each of the "
            f"{member_count} members the minimum of {request.min_inference_allocation:,} "
            f"(buy at least {needed:,})"
        )
    return problems


def text_problems(request: Provisioning) -> list[str]:
    """Problems with what is typed: a name, a billing address, and nothing too long."""
    problems = []
    if not request.name.strip():
        problems.append("the organization needs a name")
    if not request.billing_address.strip():
        problems.append("the billing address is required: where the invoices go")
    for label, text, most in (
        ("the billing address", request.billing_address, BILLING_ADDRESS_MAX_CHARS),
        (
            "the additional information",
            request.additional_information,
            ADDITIONAL_INFORMATION_MAX_CHARS,
        ),
    ):
        if len(text.strip()) > most:
            problems.append(f"{label} is longer than {most:,} characters; shorten it")
    return problems


def check_provisioning(
    request: Provisioning, names: Roster, people: Mapping[str, Person], *, name_taken: bool = False
) -> None:
    """Refuse with every problem named at once; `details["problems"]` lists them."""
    problems = text_problems(request)
    if name_taken:
        problems.append(f"an organization named {request.name.strip()!r} already exists")
    problems += people_problems(names, people)
    problems += pool_problems(request, len(names.members))
    if problems:
        raise InvalidInput(
            f"cannot provision {request.name.strip() or 'the account'}: " + "; ".join(problems),
            code="provisioning_refused",
            details={"problems": problems},
        )
