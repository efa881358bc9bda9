"""Email addresses: one account per address, compared case-insensitively."""

from __future__ import annotations

import re

from quartermaster.domain.errors import InvalidInput

_EMAIL = re.compile(
    r"^[^@\s<>\"',;\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)


def normalize_email(email: str) -> str:
    """The comparison form of `email`: trimmed and lower-cased, or a clear refusal."""
    cleaned = email.strip()
    if len(cleaned) > 320 or not _EMAIL.match(cleaned):
        raise InvalidInput(f"{email!r} is not an email address", param="email")
    return cleaned.lower()
