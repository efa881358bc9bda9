"""The domain's error tree. Adapters map each class to a status code in one table.

DomainError
├── InvalidInput        the request is malformed or breaks a rule of the input (400/422)
├── NotAuthenticated    no valid credential (401)
├── PermissionDenied    the principal may not do this (403)
├── NotFound            the target does not exist or is not visible to the principal (404)
├── Conflict            the target changed or already exists (409)
├── QuotaExceeded       the request does not fit in what is left of a cap (429)
├── PaymentRequired     a payment is needed or was declined (402)
├── TooManyRequests     slow down: sign-in back-off or a rate limit (429, Retry-After)
└── ServiceUnavailable  a dependency is unreachable; metered calls fail closed (503)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DomainError(Exception):
    """A failure a person can act on; `message` says what to do, `param` names the field."""

    message: str
    param: str | None = None
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class InvalidInput(DomainError):
    pass


class NotAuthenticated(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class QuotaExceeded(DomainError):
    pass


class PaymentRequired(DomainError):
    """Nothing was bought or changed; the message says how to pay."""


class TooManyRequests(DomainError):
    """`details["retry_after_s"]` says when to try again."""


class ServiceUnavailable(DomainError):
    """A dependency (the database, an upstream) is unreachable; metered calls fail closed."""
