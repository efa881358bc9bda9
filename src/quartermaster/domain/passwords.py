"""The password policy: long enough, not on the list of passwords that breaches reveal first."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from quartermaster.domain.errors import InvalidInput

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@cache
def _common_passwords() -> frozenset[str]:
    text = files("quartermaster.data").joinpath("common-passwords.txt").read_text()
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def check_password(password: str, email: str = "") -> None:
    """Refuse a password an attacker would try early, with a message that says what to pick."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters; "
            "a few unrelated words make a strong one",
            param="password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters", param="password"
        )
    lowered = password.lower()
    local_part = email.split("@")[0].lower()
    if lowered in _common_passwords() or (len(local_part) >= 4 and local_part in lowered):
        raise InvalidInput(
            "this password is among those tried first in attacks (common, breached, or built "
            "from your email); choose another",
            param="password",
        )
